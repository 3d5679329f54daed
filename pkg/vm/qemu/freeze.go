package qemu

import (
	"context"
	"errors"
	"fmt"

	"github.com/dropback/dropback/pkg/vm"
	"github.com/dropback/dropback/pkg/vm/qga"
)

// freeze asks the guest agent to freeze the guest's filesystems, when req
// asks for it and the guest has an agent that answers, and returns the
// function that thaws them. The thaw runs whatever happened: also when the
// freeze failed or was cancelled (the agent may have frozen some before),
// also when ctx is cancelled by then (it has its own deadline). A freeze
// that cannot be done is a notice, and the backup is crash-consistent.
func (p *point) freeze(ctx context.Context, req vm.Request) (thaw func()) {
	noop := func() {}
	if !req.Freeze {
		return noop
	}
	path, err := p.g.agentSocket(ctx)
	switch {
	case err != nil:
		p.notef("the backup is crash-consistent: cannot look for the guest agent's channel: %v", err)
		return noop
	case path == "":
		p.notef("the backup is crash-consistent: the guest has no guest agent channel (a virtserialport named %s); see docs/vms.md", agentPort)
		return noop
	}
	c, err := qga.Dial(ctx, path)
	if err != nil {
		if errors.Is(err, qga.ErrNoAgent) {
			p.notef("the backup is crash-consistent: no guest agent answers on %s (is qemu-guest-agent running in the guest?)", path)
		} else {
			p.notef("the backup is crash-consistent: %v", err)
		}
		return noop
	}
	_, ferr := c.Freeze(ctx)
	thaw = func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), qga.FreezeTimeout)
		defer cancel()
		if err := p.thaw(tctx, c, path, ferr == nil); err != nil {
			p.notef("THE GUEST'S FILESYSTEMS MAY STILL BE FROZEN: %v; thaw them with the agent's guest-fsfreeze-thaw (virsh domfsthaw)", err)
		}
	}
	if ferr != nil {
		thaw()
		p.notef("the backup is crash-consistent: the guest agent could not freeze the filesystems: %v", ferr)
		return noop
	}
	p.frozen = true
	return thaw
}

// thaw thaws through c when its session is in step (the freeze was
// answered), else through a new session, which first flushes the answer
// still owed to the old one.
func (p *point) thaw(ctx context.Context, c *qga.Client, path string, inStep bool) error {
	if inStep {
		_, err := c.Thaw(ctx)
		c.Close()
		if err == nil {
			return nil
		}
	} else {
		c.Close()
	}
	c2, err := qga.Dial(ctx, path)
	if err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	defer c2.Close()
	if _, err := c2.Thaw(ctx); err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}
