package local

import (
	"context"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/provider"
)

// parseKDF reads Argon2id's parameters; "" is the default.
func parseKDF(s string) (key.Params, error) {
	if s == "" {
		return key.Params{}, nil
	}
	p, err := key.ParseParams(s)
	if err != nil {
		return p, provider.Errorf(provider.ErrInvalid, "%v", err)
	}
	return p, nil
}

func keyView(k engine.KeyInfo) provider.RepoKey {
	v := provider.RepoKey{ID: k.ID, CreatedAt: k.CreatedAt, Current: k.Current, Problem: k.Problem}
	if k.Problem == "" {
		v.KDF = "argon2id " + k.Params.String()
	}
	return v
}

// ListKeys implements provider.KeyManager.
func (p *Provider) ListKeys(ctx context.Context) ([]provider.RepoKey, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := r.Keys(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]provider.RepoKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyView(k))
	}
	return out, nil
}

// AddKey implements provider.KeyManager.
func (p *Provider) AddKey(ctx context.Context, password []byte, kdf string) (*provider.RepoKey, error) {
	return p.newKey(ctx, password, kdf, (*engine.Repo).AddKey)
}

// ChangePassword implements provider.KeyManager.
func (p *Provider) ChangePassword(ctx context.Context, password []byte, kdf string) (*provider.RepoKey, error) {
	return p.newKey(ctx, password, kdf, (*engine.Repo).ChangePassword)
}

func (p *Provider) newKey(ctx context.Context, password []byte, kdf string,
	add func(*engine.Repo, context.Context, []byte, key.Params) (string, error)) (*provider.RepoKey, error) {
	params, err := parseKDF(kdf)
	if err != nil {
		return nil, err
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	id, err := add(r, ctx, password, params)
	if err != nil {
		return nil, mapErr(err)
	}
	keys, err := r.Keys(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	for _, k := range keys {
		if k.ID == id {
			v := keyView(k)
			return &v, nil
		}
	}
	return &provider.RepoKey{ID: id}, nil
}

// RemoveKey implements provider.KeyManager.
func (p *Provider) RemoveKey(ctx context.Context, id string) error {
	r, err := p.open(ctx)
	if err != nil {
		return err
	}
	return mapErr(r.RemoveKey(ctx, id))
}

// UpgradeRepo implements provider.Upgrader: it rewrites a repository that
// is not encrypted into an encrypted one, or finishes an upgrade that was
// cut short.
func (p *Provider) UpgradeRepo(ctx context.Context, opts provider.RepoUpgradeOptions) (*provider.RepoUpgradeResult, error) {
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
	// The upgrade reads with its own password, and around the cache.
	eopts.Password, eopts.CacheDir = nil, ""
	res, err := engine.Upgrade(ctx, p.st, engine.UpgradeOptions{Password: opts.Password, KDF: kdf, Cipher: opts.Encryption,
		Progress: opts.Progress, Options: eopts})
	if err != nil {
		return nil, mapErr(err)
	}
	if res.AlreadyEncrypted {
		return nil, provider.Errorf(provider.ErrInvalid, "the repository at %s is encrypted already: there is nothing to upgrade", p.st.Location())
	}
	p.mu.Lock()
	p.repo = nil // opened again, encrypted, by the next call
	p.mu.Unlock()
	return &provider.RepoUpgradeResult{Location: p.st.Location(), FromVersion: res.FromVersion, ToVersion: engine.FormatVersion,
		Encryption: res.Encryption, Backups: res.Backups, Hosts: res.Hosts, Actions: res.Actions, CopiedBytes: res.CopiedBytes}, nil
}
