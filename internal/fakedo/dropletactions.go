package fakedo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// dropletActionRequest is the body of POST /v2/droplets/{id}/actions.
type dropletActionRequest struct {
	Type         string `json:"type"`
	Image        *int   `json:"image"`
	BackupPolicy *struct {
		Plan      string  `json:"plan"`
		Weekday   *string `json:"weekday"`
		Hour      *int    `json:"hour"`
		Retention *int    `json:"retention_period_days"`
	} `json:"backup_policy"`
	Name *string `json:"name"`
}

// postDropletAction starts a droplet action. Its effect on the fake's state
// is immediate; the action itself completes after the configured polls.
func (s *Server) postDropletAction(c *call) reply {
	d := s.st.droplets[c.intParam("droplet_id")]
	if d == nil {
		return notFound()
	}
	var req dropletActionRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return unprocessable("bad action body: " + err.Error())
	}
	var rep reply
	switch req.Type {
	case "enable_backups":
		rep = s.enableBackups(d, &req)
	case "disable_backups":
		rep = s.disableBackups(d)
	case "change_backup_policy":
		rep = s.changePolicy(d, &req)
	case "restore":
		rep = s.restore(d, &req)
	case "snapshot":
		rep = s.snapshot(d, &req)
	default:
		return unprocessable(fmt.Sprintf("fakedo does not perform %q actions", req.Type))
	}
	if rep.status != 0 {
		return rep
	}
	a := s.st.newAction(req.Type, d.ID, "droplet", d.Region)
	return ok(http.StatusCreated, obj{"action": actionJSON(a)})
}

func (s *Server) enableBackups(d *Droplet, req *dropletActionRequest) reply {
	if d.BackupsEnabled {
		return unprocessable("Backups are already enabled for this Droplet.")
	}
	pol := Policy{Plan: "weekly", Weekday: "SUN", Hour: 0}
	if req.BackupPolicy != nil {
		var rep reply
		if pol, rep = s.policyFrom(pol, req); rep.status != 0 {
			return rep
		}
	}
	d.BackupsEnabled, d.Policy = true, pol
	return reply{}
}

func (s *Server) disableBackups(d *Droplet) reply {
	if !d.BackupsEnabled {
		return unprocessable("Backups are not enabled for this Droplet.")
	}
	d.BackupsEnabled = false
	for _, img := range s.st.imagesOf(d.ID, "backup") {
		delete(s.st.images, img.ID)
	}
	return reply{}
}

func (s *Server) changePolicy(d *Droplet, req *dropletActionRequest) reply {
	if !d.BackupsEnabled {
		return unprocessable("Backups are not enabled for this Droplet.")
	}
	if req.BackupPolicy == nil {
		return unprocessable("backup_policy is required.")
	}
	pol, rep := s.policyFrom(d.Policy, req)
	if rep.status != 0 {
		return rep
	}
	d.Policy = pol
	return reply{}
}

// policyFrom applies a request's backup_policy over cur, checking it against
// the supported plans as the API does. A retention is taken by a
// usage-based plan only, and one left out is the plan's; a usage-based plan
// refuses an empty weekday (godo pull request 997 leaves it out for them).
func (s *Server) policyFrom(cur Policy, req *dropletActionRequest) (Policy, reply) {
	bp := req.BackupPolicy
	pol := Policy{Plan: bp.Plan, Hour: cur.Hour}
	if bp.Weekday != nil {
		pol.Weekday = *bp.Weekday
	}
	if bp.Hour != nil {
		pol.Hour = *bp.Hour
	}
	sp := s.st.supportedPlan(pol.Plan)
	if sp == nil {
		return cur, unprocessable(fmt.Sprintf("invalid backup plan %q", pol.Plan))
	}
	basic := slices.Contains(BasicPlans, sp.Name)
	if !slices.Contains(sp.PossibleWindowStarts, pol.Hour) {
		return cur, unprocessable(fmt.Sprintf("plan %s does not start a window at hour %d", pol.Plan, pol.Hour))
	}
	switch {
	case !basic && bp.Weekday != nil && *bp.Weekday == "":
		return cur, unprocessable(fmt.Sprintf("weekday must be left out for plan %s", pol.Plan))
	case len(sp.PossibleDays) == 0 && pol.Weekday != "":
		return cur, unprocessable(fmt.Sprintf("plan %s does not take a weekday", pol.Plan))
	case len(sp.PossibleDays) > 0 && pol.Weekday == "":
		pol.Weekday = "SUN"
	}
	if bp.Retention != nil {
		if basic || *bp.Retention < 1 {
			return cur, unprocessable(fmt.Sprintf("plan %s does not take retention_period_days %d", pol.Plan, *bp.Retention))
		}
		pol.RetentionDays = *bp.Retention
	}
	return pol, reply{}
}

func (s *Server) restore(d *Droplet, req *dropletActionRequest) reply {
	if req.Image == nil {
		return unprocessable("image is required.")
	}
	img := s.st.images[*req.Image]
	if img == nil || img.DropletID != d.ID {
		return unprocessable("The image must be a backup or snapshot of this Droplet.")
	}
	return reply{}
}
