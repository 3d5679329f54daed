package display

import (
	"strconv"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// KeyColumns are the columns of repo key list.
var KeyColumns = []output.Column[provider.RepoKey]{
	{Key: "ID", Header: "ID", Value: func(k provider.RepoKey) string { return k.ID }},
	{Key: "Created", Header: "Created", Value: func(k provider.RepoKey) string { return output.Time(k.CreatedAt) }},
	{Key: "KDF", Header: "KDF", Value: func(k provider.RepoKey) string { return output.OrNone(k.KDF) }},
	{Key: "Current", Header: "Current", Value: func(k provider.RepoKey) string {
		if k.Current {
			return "yes"
		}
		return ""
	}},
	{Key: "Problem", Header: "Problem", Extra: true, Value: func(k provider.RepoKey) string { return output.OrNone(k.Problem) }},
}

// Keys displays the keys of a repository.
func Keys(ks []provider.RepoKey) output.Displayable {
	return output.List(KeyColumns, nonNil(ks))
}

// Key displays one key.
func Key(k *provider.RepoKey) output.Displayable {
	return output.KeyValue(KeyColumns, *k)
}

// UpgradeColumns are the rows of repo upgrade.
var UpgradeColumns = []output.Column[provider.RepoUpgradeResult]{
	{Key: "Location", Header: "Location", Value: func(r provider.RepoUpgradeResult) string { return r.Location }},
	{Key: "Format", Header: "Format", Value: func(r provider.RepoUpgradeResult) string {
		return strconv.Itoa(r.FromVersion) + " -> " + strconv.Itoa(r.ToVersion)
	}},
	{Key: "Encryption", Header: "Encryption", Value: func(r provider.RepoUpgradeResult) string { return r.Encryption }},
	{Key: "Backups", Header: "Backups", Value: func(r provider.RepoUpgradeResult) string { return strconv.Itoa(r.Backups) }},
	{Key: "Hosts", Header: "Hosts", Value: func(r provider.RepoUpgradeResult) string { return strconv.Itoa(r.Hosts) }},
	{Key: "Actions", Header: "Actions", Value: func(r provider.RepoUpgradeResult) string { return strconv.Itoa(r.Actions) }},
	{Key: "Copied", Header: "Copied", Value: func(r provider.RepoUpgradeResult) string { return output.Bytes(r.CopiedBytes) }},
}

// Upgrade displays what repo upgrade did.
func Upgrade(r *provider.RepoUpgradeResult) output.Displayable {
	return output.KeyValue(UpgradeColumns, *r)
}
