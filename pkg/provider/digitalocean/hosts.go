package digitalocean

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// perPage is the page size asked for; the API's maximum.
const perPage = 200

// maxPages stops a list whose next links never end.
const maxPages = 10000

// listAll calls fetch page after page, following links.pages.next, and
// returns every item.
func listAll[T any](ctx context.Context, fetch func(context.Context, *godo.ListOptions) ([]T, *godo.Response, error)) ([]T, error) {
	var all []T
	opt := &godo.ListOptions{Page: 1, PerPage: perPage}
	for range maxPages {
		items, resp, err := fetch(ctx, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		next := nextPage(resp)
		if next <= opt.Page || len(items) == 0 {
			return all, nil
		}
		opt.Page = next
	}
	return nil, fmt.Errorf("list: more than %d pages", maxPages)
}

// nextPage is the page number in the response's next link, or 0.
func nextPage(resp *godo.Response) int {
	if resp == nil || resp.Links == nil || resp.Links.Pages == nil || resp.Links.Pages.Next == "" {
		return 0
	}
	u, err := url.Parse(resp.Links.Pages.Next)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(u.Query().Get("page"))
	if err != nil {
		return 0
	}
	return n
}

// ListHosts lists every Droplet of the account, with its backup policy.
func (p *Provider) ListHosts(ctx context.Context) ([]provider.Host, error) {
	droplets, err := p.droplets(ctx)
	if err != nil {
		return nil, err
	}
	policies, err := p.policies(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup policies: %w", err)
	}
	hosts := make([]provider.Host, 0, len(droplets))
	for i := range droplets {
		hosts = append(hosts, toHost(&droplets[i], policies[droplets[i].ID]))
	}
	return hosts, nil
}

// GetHost returns one Droplet, named by ID or name, with its backup policy.
func (p *Provider) GetHost(ctx context.Context, host string) (*provider.Host, error) {
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	pol, _, err := p.client.Droplets.GetBackupPolicy(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("backup policy of %s: %w", dropletName(d), p.apiErr(err))
	}
	h := toHost(d, pol)
	return &h, nil
}

// droplets lists every Droplet of the account. An entry without an ID (a
// null in the list) is left out: no verb could name it.
func (p *Provider) droplets(ctx context.Context) ([]godo.Droplet, error) {
	ds, err := listAll(ctx, p.client.Droplets.List)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return slices.DeleteFunc(ds, func(d godo.Droplet) bool { return d.ID < 1 }), nil
}

// resolve finds the Droplet a host argument names: an integer is an ID,
// anything else a name. A name matching no Droplet wraps ErrNotFound, one
// matching several wraps ErrAmbiguous and lists their IDs.
func (p *Provider) resolve(ctx context.Context, host string) (*godo.Droplet, error) {
	host = strings.TrimSpace(host)
	if host == "" {
		return nil, fmt.Errorf("%w: a Droplet name or ID is required", provider.ErrInvalid)
	}
	if id, err := strconv.Atoi(host); err == nil && id > 0 {
		d, resp, err := p.client.Droplets.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("droplet %d: %w", id, p.apiErr(err))
		}
		if d == nil {
			return nil, fmt.Errorf("droplet %d: %w", id, unexpected(resp, "it holds no droplet"))
		}
		return d, nil
	}
	matches, err := listAll(ctx, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Droplet, *godo.Response, error) {
		return p.client.Droplets.ListByName(ctx, host, opt)
	})
	if err != nil {
		return nil, fmt.Errorf("droplet %q: %w", host, p.apiErr(err))
	}
	return pickByName(host, matches)
}

// pickByName chooses among the Droplets the API matched by name (which it
// does without regard to case): exact matches win over case-insensitive ones.
func pickByName(name string, matches []godo.Droplet) (*godo.Droplet, error) {
	var exact, folded []godo.Droplet
	for _, d := range matches {
		switch {
		case d.Name == name:
			exact = append(exact, d)
		case strings.EqualFold(d.Name, name):
			folded = append(folded, d)
		}
	}
	if len(exact) == 0 {
		exact = folded
	}
	switch len(exact) {
	case 0:
		return nil, fmt.Errorf("droplet %q: %w", name, provider.ErrNotFound)
	case 1:
		return &exact[0], nil
	}
	ids := make([]string, len(exact))
	for i, d := range exact {
		ids[i] = strconv.Itoa(d.ID)
	}
	sort.Strings(ids)
	return nil, fmt.Errorf("droplet %q: %w: it names %d Droplets (IDs %s); use an ID",
		name, provider.ErrAmbiguous, len(exact), strings.Join(ids, ", "))
}

// dropletName names a Droplet in messages: "droplet web-1 (123)", its name
// made safe to print.
func dropletName(d *godo.Droplet) string {
	return fmt.Sprintf("droplet %s (%d)", printable(d.Name, 64), d.ID)
}

// toHost converts a Droplet; pol, when known, is its backup policy and
// overrides what the Droplet's features say about backups.
func toHost(d *godo.Droplet, pol *godo.DropletBackupPolicy) provider.Host {
	h := provider.Host{
		ID:               d.ID,
		Name:             d.Name,
		Status:           d.Status,
		Disks:            []provider.Disk{{Name: "vda", SizeBytes: provider.Bytes(int64(d.Disk) << 30)}},
		BackupEnabled:    slices.Contains(d.Features, "backups"),
		NextBackupWindow: toWindow(d.NextBackupWindow),
		CreatedAt:        parseTime(d.Created),
	}
	if d.Region != nil {
		h.Region = d.Region.Slug
	}
	if pol != nil {
		h.BackupEnabled = pol.BackupEnabled
		h.BackupPolicy = toPolicy(pol.BackupPolicy)
	}
	return h
}

func toWindow(w *godo.BackupWindow) *provider.Window {
	if w == nil || w.Start == nil || w.End == nil {
		return nil
	}
	return &provider.Window{Start: w.Start.UTC(), End: w.End.UTC()}
}

func toPolicy(c *godo.DropletBackupPolicyConfig) *provider.Policy {
	if c == nil {
		return nil
	}
	return &provider.Policy{
		Plan:                c.Plan,
		Weekday:             c.Weekday,
		Hour:                c.Hour,
		WindowLengthHours:   c.WindowLengthHours,
		RetentionPeriodDays: c.RetentionPeriodDays,
	}
}

// parseTime reads an API timestamp; an unreadable one is the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
