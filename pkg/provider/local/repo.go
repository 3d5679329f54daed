package local

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store"
	localstore "github.com/dropback/dropback/pkg/store/local"
	s3store "github.com/dropback/dropback/pkg/store/s3"
)

// InitRepo implements provider.Repository.
func (p *Provider) InitRepo(ctx context.Context, opts provider.RepoInitOptions) (*provider.RepoStats, error) {
	// Settings are checked before anything is made: a bad one leaves no
	// bucket behind.
	kdf, err := parseKDF(opts.KDF)
	if err != nil {
		return nil, err
	}
	if err := engine.CheckEncryption(opts.Encryption); err != nil {
		return nil, mapErr(err)
	}
	eopts, err := p.engineOptions()
	if err != nil {
		return nil, err
	}
	if outer := p.outerRepository(ctx); outer != "" {
		return nil, provider.Errorf(provider.ErrInvalid, "%s lies inside the repository at %s: a repository's objects are its own, so make the new one elsewhere", p.st.Location(), outer)
	}
	if err := p.createBucket(ctx, opts.CreateBucket); err != nil {
		return nil, err
	}
	r, err := engine.Init(ctx, p.st, engine.InitOptions{ChunkSize: int(opts.ChunkSize), Password: opts.Password, KDF: kdf,
		Cipher: opts.Encryption, Options: eopts})
	if err != nil {
		return nil, mapErr(err)
	}
	p.mu.Lock()
	p.repo = r
	p.mu.Unlock()
	return p.RepoStats(ctx)
}

// RepoStats implements provider.Repository.
func (p *Provider) RepoStats(ctx context.Context) (*provider.RepoStats, error) {
	r, hosts, err := p.hosts(ctx)
	if err != nil {
		return nil, err
	}
	s, err := r.Stats(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := &provider.RepoStats{
		Location: p.st.Location(), FormatVersion: r.Config().Version, Encryption: r.Config().Encryption,
		ChunkSize: int64(r.ChunkSize()),
		Hosts:     len(hosts), Backups: s.Backups, Snapshots: s.Snapshots,
		LogicalBytes: s.LogicalBytes, DataBytes: s.DataBytes, UniqueBytes: s.UniqueBytes,
		StoredBytes: s.StoredBytes, Chunks: s.Chunks, Packs: s.Packs, ReclaimedBytes: s.ReclaimedBytes,
	}
	if s.UniqueBytes > 0 {
		out.DedupRatio = round2(float64(s.DataBytes) / float64(s.UniqueBytes))
	}
	if s.BlobBytes > 0 {
		out.CompressionRatio = round2(float64(s.UniqueBytes) / float64(s.BlobBytes))
	}
	return out, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// GetAction implements provider.Actions.
func (p *Provider) GetAction(ctx context.Context, id int) (*provider.Action, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	a, err := r.Action(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	v := actionView(*a)
	return &v, nil
}

// ListActions implements provider.Actions. When some action records
// cannot be read it returns the actions it could read and an error naming
// the rest.
func (p *Provider) ListActions(ctx context.Context) ([]provider.Action, error) {
	out, _, err := p.ListActionsPage(ctx, 1, 0)
	return out, err
}

// ListActionsPage implements provider.ActionPager; perPage 0 lists every
// action.
func (p *Provider) ListActionsPage(ctx context.Context, page, perPage int) ([]provider.Action, int, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, 0, err
	}
	as, damaged, total, err := r.ActionsPage(ctx, page, perPage)
	if err != nil {
		return nil, 0, mapErr(err)
	}
	out := make([]provider.Action, 0, len(as))
	for _, a := range as {
		out = append(out, actionView(a))
	}
	if len(damaged) > 0 {
		ids := sortedIDs(damaged)
		return out, total, provider.Errorf(provider.ErrCorrupt, "the record of %s %s cannot be read, so it is not listed (%v)",
			plural(len(ids), "action", "actions"), joinIDs(ids), damaged[ids[0]])
	}
	return out, total, nil
}

// ListHostActions implements provider.Actions: the actions whose resource
// is the host (its backups, restores and policy changes), newest first.
func (p *Provider) ListHostActions(ctx context.Context, ref string) ([]provider.Action, error) {
	h, err := p.findHost(ctx, ref)
	if err != nil {
		return nil, err
	}
	all, err := p.ListActions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]provider.Action, 0, len(all))
	for _, a := range all {
		if a.ResourceType == "host" && a.ResourceID == h.ID {
			out = append(out, a)
		}
	}
	return out, nil
}

func actionView(a engine.ActionRecord) provider.Action {
	return provider.Action{ID: a.ID, Type: a.Type, Status: a.Status, StartedAt: a.StartedAt,
		CompletedAt: a.CompletedAt, ResourceID: a.ResourceID, ResourceType: a.ResourceType, Error: a.Error}
}

// outerRepository returns the location of a repository that the one to be
// made would lie inside (a parent directory, or a shorter prefix of the
// same bucket), or "". Its gc and stats would count the new repository's
// objects as its own. A parent that cannot be read is passed over.
func (p *Provider) outerRepository(ctx context.Context) string {
	for _, parent := range parentLocations(p.opts.Repo) {
		var st store.Store
		var err error
		if strings.HasPrefix(parent, "s3://") {
			st, err = s3store.Open(ctx, parent, s3store.Options{})
		} else {
			st, err = localstore.Open(parent)
		}
		if err == nil && engine.IsRepository(ctx, st) {
			return st.Location()
		}
	}
	return ""
}

// parentLocations lists the places that hold repo, nearest first: its
// parent directories, or the shorter prefixes of its bucket down to the
// bucket itself.
func parentLocations(repo string) []string {
	if repo == "" {
		return nil // a store given directly, as tests do
	}
	var out []string
	if rest, ok := strings.CutPrefix(repo, "s3://"); ok {
		rest = strings.Trim(rest, "/")
		for i := strings.LastIndexByte(rest, '/'); i > 0; i = strings.LastIndexByte(rest, '/') {
			rest = rest[:i]
			out = append(out, "s3://"+rest)
		}
		return out
	}
	abs, err := filepath.Abs(repo)
	if err != nil {
		return nil
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		out = append(out, dir)
		if dir == filepath.Dir(dir) {
			return out
		}
	}
}
