package fakedo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
)

// Snapshots, the snapshot droplet action, and actions on tagged Droplets.

// listAllSnapshots answers GET /v2/snapshots: every snapshot of the
// account, oldest first, those of destroyed Droplets too; resource_type
// volume lists none, as the fake holds no volumes.
func (s *Server) listAllSnapshots(c *call) reply {
	var imgs []*Image
	if rt := c.r.URL.Query().Get("resource_type"); rt == "" || rt == "droplet" {
		for _, img := range s.st.images {
			if img.Type == "snapshot" {
				imgs = append(imgs, img)
			}
		}
	}
	sort.Slice(imgs, func(i, j int) bool {
		if !imgs[i].Created.Equal(imgs[j].Created) {
			return imgs[i].Created.Before(imgs[j].Created)
		}
		return imgs[i].ID < imgs[j].ID
	})
	lo, hi, links, meta := page(c, len(imgs))
	out := make([]obj, 0, hi-lo)
	for _, img := range imgs[lo:hi] {
		out = append(out, s.st.accountSnapshotJSON(img))
	}
	return ok(http.StatusOK, obj{"snapshots": out, "links": links, "meta": meta})
}

// getSnapshot answers GET /v2/snapshots/{id}; a backup is not a snapshot.
func (s *Server) getSnapshot(c *call) reply {
	img := s.st.images[c.intParam("snapshot_id")]
	if img == nil {
		return notFound()
	}
	if img.Type != "snapshot" {
		return errReply(http.StatusBadRequest, "bad_request", "the resource is not a snapshot")
	}
	return ok(http.StatusOK, obj{"snapshot": s.st.accountSnapshotJSON(img)})
}

// accountSnapshotJSON is a snapshot as /v2/snapshots has it: a string ID,
// and the Droplet it was taken of, which may no longer exist.
func (st *state) accountSnapshotJSON(img *Image) obj {
	return obj{
		"id": strconv.Itoa(img.ID), "name": img.Name, "created_at": img.Created.Format(timeFormat),
		"regions": []string{st.regionOf(img)}, "min_disk_size": st.diskOf(img), "size_gigabytes": img.SizeGB,
		"resource_id": strconv.Itoa(img.DropletID), "resource_type": "droplet", "tags": []string{},
	}
}

// snapshot takes a snapshot of a Droplet: the image is there at once, its
// action completes as the others do.
func (s *Server) snapshot(d *Droplet, req *dropletActionRequest) reply {
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	if name == "" {
		return unprocessable("name is required.")
	}
	s.st.addImage(Image{DropletID: d.ID, Type: "snapshot", Name: name})
	return reply{}
}

// postDropletActionByTag answers POST /v2/droplets/actions?tag_name=: the
// action on every Droplet with the tag, one action each. Only the actions
// the description allows by tag are taken, and of those the fake performs
// enable_backups and disable_backups.
func (s *Server) postDropletActionByTag(c *call) reply {
	tag := c.r.URL.Query().Get("tag_name")
	var req dropletActionRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return unprocessable("bad action body: " + err.Error())
	}
	if req.Type != "enable_backups" && req.Type != "disable_backups" {
		return unprocessable(fmt.Sprintf("fakedo does not perform %q actions by tag", req.Type))
	}
	var ds []*Droplet
	for _, d := range s.sortedDroplets("") {
		if slices.Contains(d.Tags, tag) {
			ds = append(ds, d)
		}
	}
	if tag == "" || len(ds) == 0 {
		return notFound()
	}
	out := make([]obj, 0, len(ds))
	for _, d := range ds {
		switch req.Type {
		case "enable_backups":
			if !d.BackupsEnabled {
				d.BackupsEnabled, d.Policy = true, Policy{Plan: "daily"}
			}
		case "disable_backups":
			d.BackupsEnabled = false
			for _, img := range s.st.imagesOf(d.ID, "backup") {
				delete(s.st.images, img.ID)
			}
		}
		out = append(out, actionJSON(s.st.newAction(req.Type, d.ID, "droplet", d.Region)))
	}
	return ok(http.StatusCreated, obj{"actions": out})
}
