package display

import (
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
