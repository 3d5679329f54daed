package digitalocean

import (
	"context"
	"fmt"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

// GetAction returns an action as DigitalOcean reports it. An errored action
// is data, not an error; see ActionErr.
func (p *Provider) GetAction(ctx context.Context, id int) (*provider.Action, error) {
	if err := checkID("action", id); err != nil {
		return nil, err
	}
	a, resp, err := p.client.Actions.Get(ctx, id)
	if err != nil {
		return nil, p.apiErr(err)
	}
	return actionOf(a, resp)
}

// actionOf converts the action an answer holds, refusing an answer that
// holds none.
func actionOf(a *godo.Action, resp *godo.Response) (*provider.Action, error) {
	if a == nil {
		return nil, unexpected(resp, "it holds no action")
	}
	return toAction(a), nil
}

// ListActions lists every action of the account, paged to the end, in the
// order DigitalOcean gives them (newest first).
func (p *Provider) ListActions(ctx context.Context) ([]provider.Action, error) {
	as, err := listAll(ctx, p.client.Actions.List)
	if err != nil {
		return nil, p.apiErr(err)
	}
	out := make([]provider.Action, 0, len(as))
	for i := range as {
		out = append(out, *toAction(&as[i]))
	}
	return out, nil
}

// ListHostActions lists the actions of one Droplet, paged to the end,
// newest first.
func (p *Provider) ListHostActions(ctx context.Context, host string) ([]provider.Action, error) {
	d, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	as, err := listAll(ctx, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Action, *godo.Response, error) {
		return p.client.Droplets.Actions(ctx, d.ID, opt)
	})
	if err != nil {
		return nil, fmt.Errorf("actions of %s: %w", dropletName(d), p.apiErr(err))
	}
	out := make([]provider.Action, 0, len(as))
	for i := range as {
		out = append(out, *toAction(&as[i]))
	}
	return out, nil
}

func toAction(a *godo.Action) *provider.Action {
	if a == nil {
		return &provider.Action{}
	}
	out := &provider.Action{
		ID:           a.ID,
		Type:         a.Type,
		Status:       a.Status,
		ResourceID:   a.ResourceID,
		ResourceType: a.ResourceType,
		Region:       a.RegionSlug,
	}
	if a.StartedAt != nil {
		out.StartedAt = a.StartedAt.UTC()
	}
	if a.CompletedAt != nil && !a.CompletedAt.IsZero() {
		t := a.CompletedAt.UTC()
		out.CompletedAt = &t
	}
	if out.Region == "" && a.Region != nil {
		out.Region = a.Region.Slug
	}
	return out
}

// CheckAccount implements provider.Account with one request, GET
// /v2/account, and returns the account's e-mail address.
func (p *Provider) CheckAccount(ctx context.Context) (string, error) {
	a, resp, err := p.client.Account.Get(ctx)
	if err != nil {
		return "", p.apiErr(err)
	}
	if a == nil {
		return "", unexpected(resp, "it holds no account")
	}
	return printable(a.Email, 200), nil
}
