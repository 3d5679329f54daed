package engine

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Records laid out as seal writes them are decoded without the wrapper's
// JSON decoder, and to the same value; anything the decoder refuses is
// refused still: a seal in capitals, a changed body, a body the seal does
// not cover.
func TestUnsealOfSealedLayoutAgreesWithDecoder(t *testing.T) {
	m := Manifest{Version: 1, ID: 42, HostName: "web-1", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Disks: []ManifestDisk{{Name: "disk0", SizeBytes: 1 << 20}}}
	data, err := seal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sealedBody(data); !ok {
		t.Fatal("a record as seal writes it is not taken by the fast path")
	}
	var got Manifest
	if err := unseal(data, &got); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("unseal: %v, %+v", err, got)
	}
	sum := string(data[len("{\n  \"blake3\": \"") : len("{\n  \"blake3\": \"")+64])
	for name, bad := range map[string][]byte{
		"seal in capitals": bytes.Replace(data, []byte(sum), []byte(strings.ToUpper(sum)), 1),
		"changed body":     bytes.Replace(data, []byte("web-1"), []byte("web-2"), 1),
		"a second body": bytes.Replace(data, []byte("\n}\n"),
			[]byte(", \"body\": {\"id\": 7}\n}\n"), 1),
	} {
		if _, ok := sealedBody(bad); ok {
			t.Errorf("%s: taken by the fast path", name)
		}
		var v Manifest
		if err := unseal(bad, &v); err == nil {
			t.Errorf("%s: unsealed to %+v", name, v)
		}
	}
}
