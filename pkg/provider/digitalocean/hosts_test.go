package digitalocean

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
	"github.com/dropback/dropback/pkg/provider"
)

func TestListHosts(t *testing.T) {
	e := newEnv(t)
	e.seed()
	hosts, err := e.p.ListHosts(context.Background())
	require.NoError(t, err)
	require.Len(t, hosts, 2)

	web := hosts[0]
	assert.Equal(t, 123, web.ID)
	assert.Equal(t, "web-1", web.Name)
	assert.Equal(t, "active", web.Status)
	assert.Equal(t, "nyc3", web.Region)
	assert.True(t, web.BackupEnabled)
	require.NotNil(t, web.BackupPolicy)
	assert.Equal(t, provider.Policy{Plan: "weekly", Weekday: "SUN", Hour: 8, WindowLengthHours: 4, RetentionPeriodDays: 28}, *web.BackupPolicy)
	require.NotNil(t, web.NextBackupWindow)
	assert.Equal(t, []provider.Disk{{Name: "vda", SizeBytes: 25 << 30}}, web.Disks)
	assert.False(t, web.CreatedAt.IsZero())

	db := hosts[1]
	assert.Equal(t, 456, db.ID)
	assert.False(t, db.BackupEnabled)
	assert.Nil(t, db.BackupPolicy)
	assert.Nil(t, db.NextBackupWindow)
	assert.Equal(t, "fra1", db.Region)
}

func TestListHostsPagesToTheEnd(t *testing.T) {
	e := newEnv(t)
	for range 205 {
		e.fake.AddDroplet(fakedo.Droplet{Name: "node"})
	}
	hosts, err := e.p.ListHosts(context.Background())
	require.NoError(t, err)
	assert.Len(t, hosts, 205)
}

func TestGetHostByIDAndName(t *testing.T) {
	e := newEnv(t)
	e.seed()
	for _, arg := range []string{"123", "web-1", " web-1 "} {
		h, err := e.p.GetHost(context.Background(), arg)
		require.NoError(t, err, arg)
		assert.Equal(t, 123, h.ID, arg)
		assert.Equal(t, "weekly", h.BackupPolicy.Plan, arg)
	}
}

func TestGetHostNotFound(t *testing.T) {
	e := newEnv(t)
	e.seed()
	for _, arg := range []string{"999", "nope"} {
		_, err := e.p.GetHost(context.Background(), arg)
		require.Error(t, err, arg)
		assert.True(t, errors.Is(err, provider.ErrNotFound), "%s: %v", arg, err)
	}
}

func TestGetHostAmbiguousListsBothIDs(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDroplet(fakedo.Droplet{ID: 301, Name: "api"})
	e.fake.AddDroplet(fakedo.Droplet{ID: 302, Name: "api"})
	_, err := e.p.GetHost(context.Background(), "api")
	require.Error(t, err)
	assert.True(t, errors.Is(err, provider.ErrAmbiguous), "%v", err)
	assert.Contains(t, err.Error(), "301")
	assert.Contains(t, err.Error(), "302")
}

func TestGetHostPrefersExactCase(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDroplet(fakedo.Droplet{ID: 301, Name: "API"})
	e.fake.AddDroplet(fakedo.Droplet{ID: 302, Name: "api"})
	h, err := e.p.GetHost(context.Background(), "api")
	require.NoError(t, err)
	assert.Equal(t, 302, h.ID)
	h, err = e.p.GetHost(context.Background(), "Api")
	assert.True(t, errors.Is(err, provider.ErrAmbiguous), "%v %v", h, err)
}

func TestEngineOnlyVerbsNameAnAlternative(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	calls := map[string]func() error{
		"hosts add":      func() error { _, err := e.p.AddHost(ctx, provider.HostSpec{Name: "x"}); return err },
		"hosts remove":   func() error { return e.p.RemoveHost(ctx, "x", provider.DisableOptions{}) },
		"backups create": func() error { _, err := e.p.CreateBackup(ctx, "x", provider.CreateOptions{}); return err },
		"backups verify": func() error { _, err := e.p.VerifyBackups(ctx, nil, provider.VerifyOptions{}); return err },
		"repo init":      func() error { _, err := e.p.InitRepo(ctx, provider.RepoInitOptions{}); return err },
		"repo stats":     func() error { _, err := e.p.RepoStats(ctx); return err },
		"repo gc":        func() error { _, err := e.p.GC(ctx, provider.GCOptions{}); return err },
		"run --due":      func() error { _, err := e.p.RunDue(ctx, provider.RunOptions{}); return err },
	}
	for verb, call := range calls {
		err := call()
		var ue *provider.UnsupportedError
		require.True(t, errors.As(err, &ue), "%s: %v", verb, err)
		assert.True(t, errors.Is(err, provider.ErrUnsupported), verb)
		assert.Equal(t, verb, ue.Verb)
		assert.Equal(t, "digitalocean", ue.Context)
		assert.NotEmpty(t, ue.Alternative, verb)
	}
	var ue *provider.UnsupportedError
	_, err := e.p.CreateBackup(ctx, "x", provider.CreateOptions{})
	require.True(t, errors.As(err, &ue))
	assert.Contains(t, ue.Alternative, "doctl compute droplet-actions snapshot")
	assert.Empty(t, e.sent(), "engine-only verbs send nothing")
	assert.Equal(t, "digitalocean", e.p.Context())
}
