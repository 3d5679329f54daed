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

func TestListBackupsPagesThrough450(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1", BackupsEnabled: true})
	ids := e.fake.AddBackups(123, 450)
	e.fake.ResetRequests()

	backups, err := e.p.ListBackups(context.Background(), "123")
	require.NoError(t, err)
	require.Len(t, backups, 450)
	for i, b := range backups {
		assert.Equal(t, ids[i], b.ID, "oldest first")
		assert.Equal(t, provider.TypeBackup, b.Type)
		assert.Equal(t, 123, b.HostID)
		assert.Equal(t, "web-1", b.HostName)
	}
	assert.Equal(t, []string{
		"GET /v2/droplets/123",
		"GET /v2/droplets/123/backups",
		"GET /v2/droplets/123/backups",
		"GET /v2/droplets/123/backups",
	}, e.sent())
}

func TestListBackupsOfAllHosts(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.AddImage(fakedo.Image{ID: 3001, DropletID: 456, Type: "backup"})
	backups, err := e.p.ListBackups(context.Background(), "")
	require.NoError(t, err)
	var ids []int
	for _, b := range backups {
		ids = append(ids, b.ID)
	}
	assert.Equal(t, []int{1232, 1233, 1234, 3001}, ids)

	none, err := e.p.ListBackups(context.Background(), "db-1")
	require.NoError(t, err)
	assert.Len(t, none, 1)
}

func TestListBackupsEmptyIsNotNil(t *testing.T) {
	e := newEnv(t)
	e.fake.AddDroplet(fakedo.Droplet{ID: 7, Name: "bare"})
	backups, err := e.p.ListBackups(context.Background(), "bare")
	require.NoError(t, err)
	assert.NotNil(t, backups)
	assert.Empty(t, backups)
}

func TestGetBackup(t *testing.T) {
	e := newEnv(t)
	e.seed()
	b, err := e.p.GetBackup(context.Background(), 1234)
	require.NoError(t, err)
	assert.Equal(t, 1234, b.ID)
	assert.Equal(t, "backup", b.Type)
	assert.Equal(t, "available", b.Status)
	assert.Equal(t, 123, b.HostID)
	assert.Equal(t, "web-1", b.HostName)
	assert.Equal(t, 25, b.MinDiskSize)
	assert.InDelta(t, 2.34, b.SizeGigabytes, 0.001)
	assert.Equal(t, "GET /v2/images/1234", e.sent()[0])

	_, err = e.p.GetBackup(context.Background(), 9999)
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)
}

func TestRestoreInPlaceSendsTheRestoreAction(t *testing.T) {
	e := newEnv(t)
	e.seed()
	res, err := e.p.RestoreBackup(context.Background(), provider.RestoreRequest{Host: "123", Backup: "1234", Force: true})
	require.NoError(t, err)
	assertBodies(t, e.actionBodies("/v2/droplets/123"), `{"type":"restore","image":1234}`)
	assert.Equal(t, 1234, res.BackupID)
	assert.Equal(t, 123, res.HostID)
	assert.Equal(t, "restore", res.Action.Type)
	assert.Equal(t, provider.StatusInProgress, res.Action.Status)
	assert.Equal(t, 123, res.Action.ResourceID)
	assert.Equal(t, "droplet", res.Action.ResourceType)
	assert.Equal(t, "nyc3", res.Action.Region)
	assert.Nil(t, res.Action.CompletedAt)
}

func TestRestoreLatest(t *testing.T) {
	e := newEnv(t)
	e.seed()
	res, err := e.p.RestoreBackup(context.Background(), provider.RestoreRequest{Host: "web-1", Backup: "latest", Force: true})
	require.NoError(t, err)
	assert.Equal(t, 1234, res.BackupID)
	assertBodies(t, e.actionBodies("/v2/droplets/123"), `{"type":"restore","image":1234}`)
}

func TestRestoreRefusals(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	cases := []struct {
		name string
		req  provider.RestoreRequest
		want error
		sent bool // whether lookups may be sent
	}{
		{"no force", provider.RestoreRequest{Host: "123", Backup: "1234"}, provider.ErrConfirm, false},
		{"to a path", provider.RestoreRequest{Host: "123", Backup: "1234", To: "/tmp/x", Force: true}, provider.ErrUnsupported, false},
		{"new without size", provider.RestoreRequest{Host: "123", Backup: "1234", ToNew: "copy", Region: "nyc3"}, provider.ErrInvalid, false},
		{"new without region", provider.RestoreRequest{Host: "123", Backup: "1234", ToNew: "copy", Size: "s-1vcpu-1gb"}, provider.ErrInvalid, false},
		{"bad backup id", provider.RestoreRequest{Host: "123", Backup: "abc", Force: true}, provider.ErrInvalid, true},
		{"backup of another droplet", provider.RestoreRequest{Host: "456", Backup: "1234", Force: true}, provider.ErrNotFound, true},
		{"no backups for latest", provider.RestoreRequest{Host: "456", Backup: "latest", Force: true}, provider.ErrNotFound, true},
	}
	for _, c := range cases {
		e.fake.ResetRequests()
		_, err := e.p.RestoreBackup(ctx, c.req)
		require.Error(t, err, c.name)
		assert.True(t, errors.Is(err, c.want), "%s: %v", c.name, err)
		for _, r := range e.fake.Requests() {
			assert.Equal(t, http.MethodGet, r.Method, "%s: nothing but lookups", c.name)
		}
		if !c.sent {
			assert.Empty(t, e.sent(), c.name)
		}
	}
}

func TestRestoreToNewDroplet(t *testing.T) {
	e := newEnv(t)
	e.seed()
	res, err := e.p.RestoreBackup(context.Background(), provider.RestoreRequest{
		Host: "web-1", Backup: "1233", ToNew: "web-1-copy", Size: "s-2vcpu-2gb", Region: "nyc3",
		SSHKeys: []string{"289794", "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45"},
		VPCUUID: "760e09ef-dc84-11e8-981e-3cfdfeaae000", Tags: []string{"restored"},
	})
	require.NoError(t, err)
	bodies := e.fake.Bodies(http.MethodPost, "/v2/droplets")
	require.Len(t, bodies, 1)
	assert.JSONEq(t, `{"name":"web-1-copy","region":"nyc3","size":"s-2vcpu-2gb","image":1233,
		"ssh_keys":[289794,"3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45"],
		"backups":false,"ipv6":false,"private_networking":false,"monitoring":false,
		"tags":["restored"],"vpc_uuid":"760e09ef-dc84-11e8-981e-3cfdfeaae000"}`, bodies[0])
	assert.Equal(t, 1233, res.BackupID)
	assert.NotEqual(t, 123, res.HostID)
	assert.Equal(t, "create", res.Action.Type)
	assert.Equal(t, res.HostID, res.Action.ResourceID)
	assert.Equal(t, provider.StatusInProgress, res.Action.Status)

	d, ok := e.fake.Droplet(res.HostID)
	require.True(t, ok)
	assert.Equal(t, "web-1-copy", d.Name)
}

func TestRestoreToNewDropletSendsEmptyKeyAndTagLists(t *testing.T) {
	e := newEnv(t)
	e.seed()
	_, err := e.p.RestoreBackup(context.Background(), provider.RestoreRequest{
		Host: "123", Backup: "latest", ToNew: "copy", Size: "s-1vcpu-1gb", Region: "nyc3",
	})
	require.NoError(t, err)
	bodies := e.fake.Bodies(http.MethodPost, "/v2/droplets")
	require.Len(t, bodies, 1)
	assert.Contains(t, bodies[0], `"ssh_keys":[]`)
	assert.Contains(t, bodies[0], `"tags":[]`)
}

func TestConvertListAndDeleteSnapshot(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	a, err := e.p.ConvertBackup(ctx, 1233)
	require.NoError(t, err)
	assertBodies(t, e.fake.Bodies(http.MethodPost, "/v2/images/1233/actions"), `{"type":"convert"}`)
	assert.Equal(t, "convert", a.Type)
	assert.Equal(t, "image", a.ResourceType)
	assert.Equal(t, 1233, a.ResourceID)

	snaps, err := e.p.ListSnapshots(ctx, "web-1")
	require.NoError(t, err)
	var ids []int
	for _, s := range snaps {
		ids = append(ids, s.ID)
		assert.Equal(t, provider.TypeSnapshot, s.Type)
	}
	assert.ElementsMatch(t, []int{1233, 2001}, ids)

	require.NoError(t, e.p.DeleteSnapshot(ctx, 2001))
	_, ok := e.fake.Image(2001)
	assert.False(t, ok)
	assert.Contains(t, e.sent(), "DELETE /v2/snapshots/2001")

	err = e.p.DeleteSnapshot(ctx, 1234)
	assert.True(t, errors.Is(err, provider.ErrInvalid), "a backup is not a snapshot: %v", err)
	err = e.p.DeleteSnapshot(ctx, 9999)
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)

	_, err = e.p.ConvertBackup(ctx, 2001+1)
	assert.Error(t, err)
}

func TestActions(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	e.fake.SetActionPolls(1)
	res, err := e.p.RestoreBackup(ctx, provider.RestoreRequest{Host: "123", Backup: "1234", Force: true})
	require.NoError(t, err)

	a, err := e.p.GetAction(ctx, res.Action.ID)
	require.NoError(t, err)
	assert.Equal(t, provider.StatusInProgress, a.Status)
	a, err = e.p.GetAction(ctx, res.Action.ID)
	require.NoError(t, err)
	assert.Equal(t, provider.StatusCompleted, a.Status)
	require.NotNil(t, a.CompletedAt)
	assert.NoError(t, ActionErr(a))

	list, err := e.p.ListActions(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, res.Action.ID, list[0].ID)

	_, err = e.p.GetAction(ctx, 424242)
	assert.True(t, errors.Is(err, provider.ErrNotFound), "%v", err)
}

func TestErroredActionIsDataAndActionErrNamesIt(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	e.fake.SetActionPolls(0)
	e.fake.FailActions("restore")
	res, err := e.p.RestoreBackup(ctx, provider.RestoreRequest{Host: "123", Backup: "1234", Force: true})
	require.NoError(t, err)
	a, err := e.p.GetAction(ctx, res.Action.ID)
	require.NoError(t, err, "an errored action is data")
	assert.Equal(t, provider.StatusErrored, a.Status)

	err = ActionErr(a)
	require.Error(t, err)
	assert.True(t, errors.Is(err, provider.ErrActionFailed))
	assert.Contains(t, err.Error(), "restore")
	assert.Contains(t, err.Error(), "action "+itoa(a.ID))
	assert.NoError(t, ActionErr(nil))
}
