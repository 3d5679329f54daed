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
	assert.Equal(t, []provider.Disk{{Name: "vda", SizeBytes: provider.Bytes(25 << 30)}}, web.Disks)
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

func TestHasNoEngineCapabilities(t *testing.T) {
	e := newEnv(t)
	var p any = e.p
	for name, has := range map[string]bool{
		"HostRegistry": implements[provider.HostRegistry](p), "BackupTaker": implements[provider.BackupTaker](p),
		"Verifier": implements[provider.Verifier](p), "Pruner": implements[provider.Pruner](p),
		"BackupKeeper": implements[provider.BackupKeeper](p), "Repository": implements[provider.Repository](p),
		"Scheduler": implements[provider.Scheduler](p),
	} {
		assert.False(t, has, "a DigitalOcean context has no %s", name)
	}
	assert.Equal(t, "digitalocean", e.p.Context())
}

func implements[C any](p any) bool {
	_, ok := p.(C)
	return ok
}
