package fakedo

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// call is one request being answered.
type call struct {
	r      *http.Request
	params map[string]string
	body   []byte
}

// intParam is a path parameter as an integer; one that is not reads as 0,
// which is no object's ID.
func (c *call) intParam(name string) int {
	n, _ := strconv.Atoi(c.params[name])
	return n
}

func (c *call) intQuery(name string, def int) int {
	if n, err := strconv.Atoi(c.r.URL.Query().Get(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// operation answers one call. It runs with s.mu held.
type operation func(*Server, *call) reply

// operations maps the API description's operation IDs to the fake's
// handlers.
var operations = map[string]operation{
	"account_get":                             (*Server).getAccount,
	"droplets_list":                           (*Server).listDroplets,
	"droplets_get":                            (*Server).getDroplet,
	"droplets_create":                         (*Server).createDroplet,
	"droplets_list_backups":                   (*Server).listBackups,
	"droplets_list_snapshots":                 (*Server).listSnapshots,
	"droplets_get_backup_policy":              (*Server).getPolicy,
	"droplets_list_backup_policies":           (*Server).listPolicies,
	"droplets_list_supported_backup_policies": (*Server).listSupported,
	"dropletActions_post":                     (*Server).postDropletAction,
	"dropletActions_get":                      (*Server).getDropletAction,
	"dropletActions_list":                     (*Server).listDropletActions,
	"actions_list":                            (*Server).listActions,
	"actions_get":                             (*Server).getAction,
	"images_get":                              (*Server).getImage,
	"images_delete":                           (*Server).deleteImage,
	"imageActions_post":                       (*Server).postImageAction,
	"imageActions_get":                        (*Server).getImageAction,
	"snapshots_delete":                        (*Server).deleteSnapshot,
	"snapshots_list":                          (*Server).listAllSnapshots,
	"snapshots_get":                           (*Server).getSnapshot,
	"dropletActions_post_byTag":               (*Server).postDropletActionByTag,
}

func notFound() reply {
	return errReply(http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
}

func unprocessable(msg string) reply {
	return errReply(http.StatusUnprocessableEntity, "unprocessable_entity", msg)
}

func ok(status int, body obj) reply { return reply{status: status, body: body} }

func (s *Server) getAccount(c *call) reply {
	return ok(http.StatusOK, obj{"account": obj{
		"droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 10, "email": "dev@example.com",
		"uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef", "email_verified": true, "status": "active",
		"status_message": "",
	}})
}

func (s *Server) sortedDroplets(name string) []*Droplet {
	return s.filteredDroplets(name, "")
}

// filteredDroplets are the Droplets with a name (without regard to case)
// and a tag, either "" for any, by ID.
func (s *Server) filteredDroplets(name, tag string) []*Droplet {
	var ds []*Droplet
	for _, d := range s.st.droplets {
		if (name == "" || strings.EqualFold(d.Name, name)) && (tag == "" || slices.Contains(d.Tags, tag)) {
			ds = append(ds, d)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	return ds
}

func (s *Server) listDroplets(c *call) reply {
	q := c.r.URL.Query()
	ds := s.filteredDroplets(q.Get("name"), q.Get("tag_name"))
	lo, hi, links, meta := page(c, len(ds))
	out := make([]obj, 0, hi-lo)
	for _, d := range ds[lo:hi] {
		out = append(out, s.st.dropletJSON(d))
	}
	return ok(http.StatusOK, obj{"droplets": out, "links": links, "meta": meta})
}

func (s *Server) getDroplet(c *call) reply {
	d := s.st.droplets[c.intParam("droplet_id")]
	if d == nil {
		return notFound()
	}
	return ok(http.StatusOK, obj{"droplet": s.st.dropletJSON(d)})
}

// createDroplet creates a Droplet from a backup or snapshot image.
func (s *Server) createDroplet(c *call) reply {
	var req struct {
		Name    string   `json:"name"`
		Region  string   `json:"region"`
		Size    string   `json:"size"`
		Image   any      `json:"image"`
		VPCUUID string   `json:"vpc_uuid"`
		Tags    []string `json:"tags"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil || req.Name == "" {
		return unprocessable("fakedo creates one Droplet at a time, by name")
	}
	id, isID := req.Image.(float64)
	src := s.st.images[int(id)]
	if !isID || src == nil {
		return unprocessable("You specified an invalid image for Droplet creation.")
	}
	d := &Droplet{
		ID: s.st.id(0), Name: req.Name, Region: req.Region, Size: req.Size, DiskGB: s.st.diskOf(src),
		Status: "new", Policy: Policy{Plan: "weekly", Weekday: "SUN"}, VPCUUID: req.VPCUUID, Tags: req.Tags,
		Created: s.st.now(),
	}
	s.st.droplets[d.ID] = d
	a := s.st.newAction("create", d.ID, "droplet", d.Region)
	if s.st.noActionLinks {
		return ok(http.StatusAccepted, obj{"droplet": s.st.dropletJSON(d), "links": obj{"actions": []obj{}}})
	}
	link := obj{"id": a.ID, "rel": "create", "href": "http://" + c.r.Host + "/v2/actions/" + strconv.Itoa(a.ID)}
	return ok(http.StatusAccepted, obj{"droplet": s.st.dropletJSON(d), "links": obj{"actions": []obj{link}}})
}

func (s *Server) listImages(c *call, typ, key string) reply {
	d := s.st.droplets[c.intParam("droplet_id")]
	if d == nil {
		return notFound()
	}
	imgs := s.st.imagesOf(d.ID, typ)
	lo, hi, links, meta := page(c, len(imgs))
	out := make([]obj, 0, hi-lo)
	for _, img := range imgs[lo:hi] {
		out = append(out, s.st.snapshotJSON(img))
	}
	return ok(http.StatusOK, obj{key: out, "links": links, "meta": meta})
}

func (s *Server) listBackups(c *call) reply   { return s.listImages(c, "backup", "backups") }
func (s *Server) listSnapshots(c *call) reply { return s.listImages(c, "snapshot", "snapshots") }

func (s *Server) getPolicy(c *call) reply {
	d := s.st.droplets[c.intParam("droplet_id")]
	if d == nil {
		return notFound()
	}
	return ok(http.StatusOK, obj{"policy": s.st.policyJSON(d)})
}

func (s *Server) listPolicies(c *call) reply {
	ds := s.sortedDroplets("")
	lo, hi, links, meta := page(c, len(ds))
	pols := obj{}
	for _, d := range ds[lo:hi] {
		pols[strconv.Itoa(d.ID)] = s.st.policyJSON(d)
	}
	return ok(http.StatusOK, obj{"policies": pols, "links": links, "meta": meta})
}

func (s *Server) listSupported(c *call) reply {
	return ok(http.StatusOK, obj{"supported_policies": s.st.supported})
}

// listActions lists actions newest first, as the API does.
func (s *Server) listActions(c *call) reply {
	return s.actionList(c, func(*Action) bool { return true })
}

func (s *Server) listDropletActions(c *call) reply {
	id := c.intParam("droplet_id")
	if s.st.droplets[id] == nil {
		return notFound()
	}
	return s.actionList(c, func(a *Action) bool { return a.ResourceType == "droplet" && a.ResourceID == id })
}

func (s *Server) actionList(c *call, keep func(*Action) bool) reply {
	var as []*Action
	for _, a := range s.st.actions {
		if keep(a) {
			as = append(as, a)
		}
	}
	sort.Slice(as, func(i, j int) bool { return as[i].ID > as[j].ID })
	lo, hi, links, meta := page(c, len(as))
	out := make([]obj, 0, hi-lo)
	for _, a := range as[lo:hi] {
		out = append(out, actionJSON(a))
	}
	return ok(http.StatusOK, obj{"actions": out, "links": links, "meta": meta})
}

// readAction answers a read of an action, which moves it towards its end.
func (s *Server) readAction(id int, keep func(*Action) bool) reply {
	a := s.st.actions[id]
	if a == nil || !keep(a) {
		return notFound()
	}
	s.st.poll(a)
	return ok(http.StatusOK, obj{"action": actionJSON(a)})
}

func (s *Server) getAction(c *call) reply {
	return s.readAction(c.intParam("action_id"), func(*Action) bool { return true })
}

func (s *Server) getDropletAction(c *call) reply {
	id := c.intParam("droplet_id")
	return s.readAction(c.intParam("action_id"), func(a *Action) bool {
		return a.ResourceType == "droplet" && a.ResourceID == id
	})
}

func (s *Server) getImageAction(c *call) reply {
	id := c.intParam("image_id")
	return s.readAction(c.intParam("action_id"), func(a *Action) bool {
		return a.ResourceType == "image" && a.ResourceID == id
	})
}

func (s *Server) getImage(c *call) reply {
	img := s.st.images[c.intParam("image_id")]
	if img == nil {
		return notFound()
	}
	return ok(http.StatusOK, obj{"image": s.st.imageJSON(img)})
}

func (s *Server) deleteImage(c *call) reply {
	id := c.intParam("image_id")
	if s.st.images[id] == nil {
		return notFound()
	}
	delete(s.st.images, id)
	return reply{status: http.StatusNoContent}
}

func (s *Server) deleteSnapshot(c *call) reply {
	id := c.intParam("snapshot_id")
	img := s.st.images[id]
	if img == nil {
		return notFound()
	}
	if img.Type != "snapshot" {
		return errReply(http.StatusBadRequest, "bad_request", "the resource is not a snapshot")
	}
	delete(s.st.images, id)
	return reply{status: http.StatusNoContent}
}

// postImageAction converts a backup into a snapshot.
func (s *Server) postImageAction(c *call) reply {
	var req struct {
		Type string `json:"type"`
	}
	json.Unmarshal(c.body, &req)
	img := s.st.images[c.intParam("image_id")]
	if img == nil {
		return notFound()
	}
	if req.Type != "convert" {
		return unprocessable("fakedo only converts images")
	}
	if img.Type != "backup" {
		return unprocessable("Only backups can be converted to snapshots.")
	}
	img.Type = "snapshot"
	a := s.st.newAction("convert", img.ID, "image", s.st.regionOf(img))
	return ok(http.StatusCreated, obj{"action": actionJSON(a)})
}
