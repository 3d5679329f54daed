package cmdutil

import (
	"context"

	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/provider"
)

// Kinds of context, as an UnsupportedError names the one that can.
const (
	OnlyEngine       = "engine"
	OnlyDigitalOcean = "DigitalOcean"
)

// elsewhere says, for a verb that one kind of context cannot do, which kind
// can and what to do instead where it cannot. It is the one place these
// messages are written; a verb whose capability every context has needs no
// entry.
var elsewhere = map[string]struct{ only, alternative string }{
	"hosts add": {OnlyEngine,
		"every Droplet of the account is already a host; create Droplets with `doctl compute droplet create`, or use the local context to register a self-hosted host"},
	"hosts remove": {OnlyEngine,
		"Droplets are hosts for as long as they exist; stop their backups with `dropback backups disable`, or delete the Droplet with `doctl compute droplet delete`"},
	"backups create": {OnlyEngine,
		"DigitalOcean takes backups on its schedule; take a snapshot now with `dropback snapshots create <droplet>` (doctl: `doctl compute droplet-action snapshot <droplet-id> --snapshot-name NAME`), or use the local context"},
	"backups verify": {OnlyEngine,
		"DigitalOcean backups cannot be read back to check them; restore one to a new Droplet with `dropback backups restore <droplet> <id> --to-new <name>` and check that, or use the local context"},
	"backups prune": {OnlyEngine,
		"DigitalOcean keeps backups for the retention of the plan; choose another with `dropback policy set <droplet> --plan`"},
	"backups delete": {OnlyEngine,
		"DigitalOcean expires backups by the plan's retention; keep one by converting it with `dropback backups convert <id>`, and delete snapshots with `dropback snapshots delete <id>`"},
	"backups list --orphaned": {OnlyEngine,
		"a destroyed Droplet's backups go with it; list the snapshots it left with `dropback snapshots list`"},
	"backups disable --keep-backups": {OnlyEngine,
		"DigitalOcean deletes a Droplet's backups when backups are disabled; keep the ones you need by converting them to snapshots with `dropback backups convert <id>` first"},
	"backups serve":  {OnlyEngine, doNoDownload},
	"backups export": {OnlyEngine, doNoDownload},
	"backups mount":  {OnlyEngine, doNoDownload},
	"repo init": {OnlyEngine,
		"DigitalOcean keeps backups in your account, with no repository to create; use `--context local` for the engine's repository"},
	"repo stats": {OnlyEngine,
		"DigitalOcean has no repository; list backups with `dropback backups list` and their sizes, or use `--context local`"},
	"repo gc": {OnlyEngine,
		"DigitalOcean expires backups by the plan's retention by itself; delete snapshots you no longer need with `dropback snapshots delete <id>`"},
	"run --due": {OnlyEngine,
		"DigitalOcean runs backups and retention on its own schedule; set it with `dropback policy set <droplet>`"},
	"agent": {OnlyEngine,
		"DigitalOcean runs backups and retention on its own schedule; set it with `dropback policy set <droplet>`"},
	"snapshots create": {OnlyDigitalOcean,
		"the engine takes on-demand backups: `dropback backups create <host>`, then keep one as a snapshot with `dropback backups convert <id>`"},
	"backups enable --tag": {OnlyDigitalOcean,
		"the engine's hosts have no tags; enable the backups of each host by name or ID"},
	"backups disable --tag": {OnlyDigitalOcean,
		"the engine's hosts have no tags; disable the backups of each host by name or ID"},
	"auth init": {OnlyDigitalOcean, "the local context needs no token"},
}

// doNoDownload is the alternative to reading a DigitalOcean backup in
// place, which DigitalOcean does not allow.
const doNoDownload = "DigitalOcean backups cannot be downloaded or read in place; restore to a new Droplet instead: `dropback --context digitalocean backups restore <droplet> <id> --to-new NAME --size SLUG --region REGION`"

// Unsupported is the error of verb in context p, which lacks the
// capability verb needs.
func Unsupported(p provider.Provider, verb string) error {
	e := elsewhere[verb]
	return &provider.UnsupportedError{
		Verb: verb, Context: safetext.Escape(safetext.Clip(p.Context(), 64)),
		Only: e.only, Alternative: e.alternative,
	}
}

// As returns p's capability C, or the *provider.UnsupportedError of verb
// when p's context lacks it.
func As[C any](p provider.Provider, verb string) (C, error) {
	c, ok := p.(C)
	if !ok {
		var zero C
		return zero, Unsupported(p, verb)
	}
	return c, nil
}

// Capability returns a getter of capability C of the provider of f's
// context, for a command's options: it builds the provider on first use (see
// Factory.Provider) and fails, before anything is sent or changed, with the
// *provider.UnsupportedError of verb when the context lacks C. C is one of
// pkg/provider's capabilities, or an interface that embeds several.
func Capability[C any](f *Factory, verb string) func(context.Context) (C, error) {
	return func(ctx context.Context) (C, error) {
		p, err := f.Provider(ctx)
		if err != nil {
			var zero C
			return zero, err
		}
		return As[C](p, verb)
	}
}

// Has reports whether p has capability C.
func Has[C any](p any) bool {
	_, ok := p.(C)
	return ok
}
