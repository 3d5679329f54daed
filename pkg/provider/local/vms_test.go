package local

import (
	"errors"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
)

func TestVMRecordFromSpec(t *testing.T) {
	tests := []struct {
		name     string
		spec     provider.HostSpec
		wantKind string // "" for a host of disks
		wantErr  string
	}{
		{name: "disks", spec: provider.HostSpec{Disks: []string{"/x.img"}}},
		{name: "qemu", spec: provider.HostSpec{QMP: "/run/x.qmp", Devices: []string{"vda"}}, wantKind: engine.VMQemu},
		{name: "libvirt", spec: provider.HostSpec{Libvirt: "web-1"}, wantKind: engine.VMLibvirt},
		{name: "nothing", spec: provider.HostSpec{}, wantErr: "give at least one --disk"},
		{name: "disk and qemu", spec: provider.HostSpec{Disks: []string{"/x.img"}, QMP: "/q"}, wantErr: "only one of them"},
		{name: "qemu and libvirt", spec: provider.HostSpec{QMP: "/q", Libvirt: "d"}, wantErr: "only one of them"},
		{name: "device with disks", spec: provider.HostSpec{Disks: []string{"/x.img"}, Devices: []string{"vda"}}, wantErr: "for a running guest"},
		{name: "agent with libvirt", spec: provider.HostSpec{Libvirt: "d", Agent: "/a"}, wantErr: "--qemu-agent is for --qemu"},
		{name: "device alone", spec: provider.HostSpec{Devices: []string{"vda"}}, wantErr: "--device needs a running guest: give --qemu or --libvirt"},
		{name: "scratch missing", spec: provider.HostSpec{QMP: "/q", Scratch: "/nonexistent"}, wantErr: "--scratch /nonexistent: no such directory"},
		{name: "scratch a file", spec: provider.HostSpec{QMP: "/q", Scratch: "vms_test.go"}, wantErr: "vms_test.go is not a directory"},
		{name: "scratch a directory", spec: provider.HostSpec{Libvirt: "d", Scratch: "."}, wantKind: engine.VMLibvirt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "h"
			rec, err := vmRecord(tt.spec)
			if tt.wantErr != "" {
				if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want ErrInvalid with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ""; rec != nil {
				got = rec.Kind
				if got != tt.wantKind {
					t.Fatalf("kind %q, want %q", got, tt.wantKind)
				}
			} else if tt.wantKind != "" {
				t.Fatalf("no VM record, want %q", tt.wantKind)
			}
		})
	}
}
