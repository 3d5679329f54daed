package fakedo

import (
	"fmt"
	"net/url"
	"time"
)

// JSON shapes, as the API description has them.

type obj = map[string]any

const timeFormat = time.RFC3339

var regionNames = map[string]string{
	"ams3": "Amsterdam 3", "blr1": "Bangalore 1", "fra1": "Frankfurt 1", "lon1": "London 1",
	"nyc1": "New York 1", "nyc3": "New York 3", "sfo3": "San Francisco 3", "sgp1": "Singapore 1",
	"syd1": "Sydney 1", "tor1": "Toronto 1",
}

func regionJSON(slug string) obj {
	name := regionNames[slug]
	if name == "" {
		name = slug
	}
	return obj{
		"name": name, "slug": slug, "available": true,
		"features": []string{"backups", "ipv6", "metadata", "storage"},
		"sizes":    []string{"s-1vcpu-1gb", "s-2vcpu-2gb", "s-4vcpu-8gb"},
	}
}

func sizeJSON(slug string, diskGB int, region string) obj {
	return obj{
		"slug": slug, "memory": 1024, "vcpus": 1, "disk": diskGB, "transfer": 1.0,
		"price_monthly": 6.0, "price_hourly": 0.00893, "regions": []string{region},
		"available": true, "description": "Basic",
	}
}

func (st *state) dropletJSON(d *Droplet) obj {
	features := []string{"monitoring", "droplet_agent"}
	// The API sends null without backups, but the description wraps the
	// nullable window in an allOf that refuses null: an empty window is what
	// both accept.
	window := obj{}
	if d.BackupsEnabled {
		features = append(features, "backups")
		window = st.windowJSON(d)
	}
	return obj{
		"id": d.ID, "name": d.Name, "memory": 1024, "vcpus": 1, "disk": d.DiskGB,
		"locked": false, "status": d.Status, "kernel": nil,
		"created_at":         d.Created.Format(timeFormat),
		"features":           features,
		"backup_ids":         idsOf(st.imagesOf(d.ID, "backup")),
		"next_backup_window": window,
		"snapshot_ids":       idsOf(st.imagesOf(d.ID, "snapshot")),
		"image": obj{
			"id": 6918990, "name": "24.04 (LTS) x64", "distribution": "Ubuntu", "slug": "ubuntu-24-04-x64",
			"public": true, "regions": []string{d.Region}, "created_at": Epoch.Format(timeFormat),
			"type": "base", "min_disk_size": 15, "size_gigabytes": 2.36, "status": "available",
		},
		"volume_ids": []string{},
		"size":       sizeJSON(d.Size, d.DiskGB, d.Region),
		"size_slug":  d.Size,
		"networks":   obj{"v4": []any{}, "v6": []any{}},
		"region":     regionJSON(d.Region),
		"tags":       nonNilStrings(d.Tags),
		"vpc_uuid":   d.VPCUUID,
	}
}

// windowJSON is the next backup window: the policy's hour on the day after
// the fake's clock (or the policy's weekday for a weekly plan).
func (st *state) windowJSON(d *Droplet) obj {
	start := time.Date(st.clock.Year(), st.clock.Month(), st.clock.Day()+1, d.Policy.Hour, 0, 0, 0, time.UTC)
	for d.Policy.Weekday != "" && start.Weekday().String()[:3] != titleDay(d.Policy.Weekday) {
		start = start.Add(24 * time.Hour)
	}
	length := 4
	if sp := st.supportedPlan(d.Policy.Plan); sp != nil && sp.WindowLengthHours > 0 {
		length = sp.WindowLengthHours
	}
	return obj{"start": start.Format(timeFormat), "end": start.Add(time.Duration(length) * time.Hour).Format(timeFormat)}
}

func titleDay(wd string) string {
	if len(wd) != 3 {
		return wd
	}
	return wd[:1] + string(wd[1]+'a'-'A') + string(wd[2]+'a'-'A')
}

func (st *state) policyJSON(d *Droplet) obj {
	rec := obj{"droplet_id": d.ID, "backup_enabled": d.BackupsEnabled}
	if !d.BackupsEnabled {
		return rec
	}
	pol := obj{"plan": d.Policy.Plan, "weekday": d.Policy.Weekday, "hour": d.Policy.Hour}
	if sp := st.supportedPlan(d.Policy.Plan); sp != nil {
		pol["window_length_hours"] = sp.WindowLengthHours
		pol["retention_period_days"] = sp.RetentionPeriodDays
	}
	if d.Policy.RetentionDays > 0 {
		pol["retention_period_days"] = d.Policy.RetentionDays
	}
	rec["backup_policy"] = pol
	rec["next_backup_window"] = st.windowJSON(d)
	return rec
}

// snapshotJSON is an image as the Droplet backups and snapshots lists have it.
func (st *state) snapshotJSON(img *Image) obj {
	return obj{
		"id": img.ID, "name": img.Name, "type": img.Type,
		"created_at": img.Created.Format(timeFormat), "regions": []string{st.regionOf(img)},
		"min_disk_size": st.diskOf(img), "size_gigabytes": img.SizeGB,
	}
}

// imageJSON is an image as GET /v2/images/{id} has it.
func (st *state) imageJSON(img *Image) obj {
	return obj{
		"id": img.ID, "name": img.Name, "type": img.Type, "distribution": "Ubuntu", "slug": nil,
		"public": false, "regions": []string{st.regionOf(img)}, "created_at": img.Created.Format(timeFormat),
		"min_disk_size": st.diskOf(img), "size_gigabytes": img.SizeGB, "status": "available",
		"description": "", "tags": []string{}, "error_message": "",
	}
}

func (st *state) regionOf(img *Image) string {
	if d := st.droplets[img.DropletID]; d != nil {
		return d.Region
	}
	return "nyc3"
}

func (st *state) diskOf(img *Image) int {
	if d := st.droplets[img.DropletID]; d != nil {
		return d.DiskGB
	}
	return 25
}

func actionJSON(a *Action) obj {
	var completed any
	if a.CompletedAt != nil {
		completed = a.CompletedAt.Format(timeFormat)
	}
	return obj{
		"id": a.ID, "status": a.Status, "type": a.Type,
		"started_at": a.StartedAt.Format(timeFormat), "completed_at": completed,
		"resource_id": a.ResourceID, "resource_type": a.ResourceType,
		"region": regionJSON(a.Region), "region_slug": a.Region,
	}
}

// page cuts one page out of n items and returns its bounds and the links and
// meta objects of the answer.
func page(c *call, n int) (lo, hi int, links, meta obj) {
	pageNo, perPage := c.intQuery("page", 1), c.intQuery("per_page", 20)
	lo = min((pageNo-1)*perPage, n)
	hi = min(lo+perPage, n)
	last := max(1, (n+perPage-1)/perPage)
	link := func(p int) string {
		u := url.URL{Scheme: "http", Host: c.r.Host, Path: c.r.URL.Path}
		q := url.Values{"page": {fmt.Sprint(p)}, "per_page": {fmt.Sprint(perPage)}}
		u.RawQuery = q.Encode()
		return u.String()
	}
	pages := obj{}
	if pageNo > 1 {
		pages["first"], pages["prev"] = link(1), link(min(pageNo-1, last))
	}
	if pageNo < last {
		pages["next"], pages["last"] = link(pageNo+1), link(last)
	}
	return lo, hi, obj{"pages": pages}, obj{"total": n}
}

func idsOf(images []*Image) []int {
	ids := make([]int, 0, len(images))
	for _, img := range images {
		ids = append(ids, img.ID)
	}
	return ids
}

func nonNilStrings(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
