package digitalocean

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
	"github.com/dropback/dropback/pkg/provider"
)

func TestTakeSnapshotIsTheSnapshotAction(t *testing.T) {
	e := newEnv(t)
	e.seed()
	a, err := e.p.TakeSnapshot(context.Background(), "web-1", "before-upgrade")
	require.NoError(t, err)
	assert.Equal(t, "snapshot", a.Type)
	assert.Equal(t, 123, a.ResourceID)
	assertBodies(t, e.actionBodies("/v2/droplets/123"), `{"type":"snapshot","name":"before-upgrade"}`)

	_, err = e.p.TakeSnapshot(context.Background(), "web-1", "")
	require.NoError(t, err)
	bodies := e.actionBodies("/v2/droplets/123")
	require.Len(t, bodies, 2)
	assert.Regexp(t, `"name":"web-1-\d{8}-\d{6}"`, bodies[1], "a name of its Droplet and the time")
}

func TestListSnapshotsOfTheAccountHoldsThoseOfDestroyedDroplets(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.AddImage(fakedo.Image{ID: 3002, DropletID: 999, Type: "snapshot", Name: "old"})
	ctx := context.Background()

	all, err := e.p.ListSnapshots(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, 2001, all[0].ID)
	assert.Equal(t, "web-1", all[0].HostName)
	assert.Equal(t, 3002, all[1].ID)
	assert.Equal(t, 999, all[1].HostID)
	assert.Equal(t, "", all[1].HostName, "the Droplet is gone")
	assert.Equal(t, "999", all[1].ResourceID)
	assert.Contains(t, e.sent(), "GET /v2/snapshots")
	for _, r := range e.fake.Requests() {
		if r.Path == "/v2/snapshots" {
			assert.Contains(t, r.Query, "resource_type=droplet")
		}
	}

	gone, err := e.p.ListSnapshots(ctx, "999")
	require.NoError(t, err)
	require.Len(t, gone, 1)
	assert.Equal(t, 3002, gone[0].ID)

	_, err = e.p.ListSnapshots(ctx, "nope")
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)
}

func TestListSnapshotsPagesThrough450(t *testing.T) {
	e := newEnv(t)
	for i := range 450 {
		e.fake.AddImage(fakedo.Image{ID: 5000 + i, DropletID: 999, Type: "snapshot"})
	}
	e.fake.ResetRequests()
	all, err := e.p.ListSnapshots(context.Background(), "")
	require.NoError(t, err)
	assert.Len(t, all, 450)
	assert.Len(t, e.fake.Bodies(http.MethodGet, "/v2/snapshots"), 3, "three pages of 200")
}

func TestGetBackupOfADestroyedDroplet(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.AddImage(fakedo.Image{ID: 3001, DropletID: 999, Type: "backup"})
	e.fake.AddImage(fakedo.Image{ID: 3002, DropletID: 999, Type: "snapshot"})
	ctx := context.Background()

	b, err := e.p.GetBackup(ctx, 3001)
	require.NoError(t, err)
	assert.Equal(t, 0, b.HostID, "a backup does not say whose it was")
	s, err := e.p.GetBackup(ctx, 3002)
	require.NoError(t, err)
	assert.Equal(t, 999, s.HostID, "a snapshot does")
	assert.Equal(t, "droplet", s.ResourceType)
	owned, err := e.p.GetBackup(ctx, 1234)
	require.NoError(t, err)
	assert.Equal(t, "web-1", owned.HostName)
	assert.Equal(t, []string{"nyc3"}, owned.Regions, "the image's fields are kept")
	assert.Equal(t, "Ubuntu", owned.Distribution)
}

func TestRestoreToNewFromASnapshotOfADestroyedDroplet(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.AddImage(fakedo.Image{ID: 3002, DropletID: 999, Type: "snapshot"})
	ctx := context.Background()
	req := provider.RestoreRequest{Host: "999", Backup: "3002", ToNew: "again", Size: "s-1vcpu-1gb", Region: "nyc3"}
	res, err := e.p.RestoreBackup(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 3002, res.BackupID)
	assert.Equal(t, "create", res.Action.Type)

	req.Host = "998" // not the snapshot's Droplet
	_, err = e.p.RestoreBackup(ctx, req)
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)
	req.Host, req.ToNew, req.Force = "999", "", true // in place needs the Droplet
	_, err = e.p.RestoreBackup(ctx, req)
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)
}

func TestRestoreToNewFindsTheCreateActionWithoutALink(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.OmitActionLinks()
	res, err := e.p.RestoreBackup(context.Background(), provider.RestoreRequest{Host: "web-1", Backup: "1233",
		ToNew: "copy", Size: "s-1vcpu-1gb", Region: "nyc3"})
	require.NoError(t, err)
	assert.Equal(t, "create", res.Action.Type)
	assert.Greater(t, res.Action.ID, 0, "an action to follow with --wait")
	assert.Equal(t, res.HostID, res.Action.ResourceID)
}

func TestBackupsByTag(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1", BackupsEnabled: true, Tags: []string{"prod"}})
	e.fake.AddDroplet(fakedo.Droplet{ID: 456, Name: "db-1", Tags: []string{"prod"}})
	e.fake.AddImage(fakedo.Image{ID: 1232, DropletID: 123, Type: "backup"})
	e.fake.ResetRequests()
	ctx := context.Background()

	as, err := e.p.EnableBackupsByTag(ctx, "prod")
	require.NoError(t, err)
	assert.Len(t, as, 2)
	assertBodies(t, e.fake.Bodies(http.MethodPost, "/v2/droplets/actions"), `{"type":"enable_backups"}`)

	e.fake.ResetRequests()
	_, err = e.p.DisableBackupsByTag(ctx, "prod", provider.DisableOptions{})
	assert.True(t, errors.Is(err, provider.ErrConfirm), "%v", err)
	assert.ErrorContains(t, err, "1 backup(s)")
	assert.Empty(t, e.fake.Bodies(http.MethodPost, "/v2/droplets/actions"))
	as, err = e.p.DisableBackupsByTag(ctx, "prod", provider.DisableOptions{DeleteBackups: true})
	require.NoError(t, err)
	assert.Len(t, as, 2)
	assertBodies(t, e.fake.Bodies(http.MethodPost, "/v2/droplets/actions"), `{"type":"disable_backups"}`)

	_, err = e.p.EnableBackupsByTag(ctx, "nothing-has-it")
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)
}

func TestHostActionsAndAccount(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	_, err := e.p.EnableBackups(ctx, "db-1", provider.PolicyRequest{})
	require.NoError(t, err)
	as, err := e.p.ListHostActions(ctx, "db-1")
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Equal(t, "enable_backups", as[0].Type)
	email, err := e.p.CheckAccount(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dev@example.com", email)
}
