package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestSealedRecords(t *testing.T) {
	m := Manifest{Version: 1, ID: 7, HostID: 3, HostName: "web-1", CreatedAt: time.Unix(1e9, 0).UTC(),
		Disks: []ManifestDisk{{Name: "vda", Path: "/x.img", SizeBytes: 10737418240, Image: "ab"}}}
	data, err := seal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Manifest
	if err := unseal(data, &back); err != nil || back.ID != 7 || back.Disks[0].SizeBytes != 10737418240 {
		t.Fatalf("unseal(seal(m)) = %+v, %v", back, err)
	}
	if !json.Valid(data) {
		t.Fatalf("a sealed record is not JSON:\n%s", data)
	}

	// A change that leaves valid JSON: one digit of the disk size, one
	// letter of the host name, one digit of the sum itself.
	for _, c := range []struct{ from, to string }{
		{"10737418240", "10737418241"},
		{`"web-1"`, `"web-2"`},
		{`"blake3": "`, `"blake3": "0`},
	} {
		bad := bytes.Replace(data, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, data) {
			t.Fatalf("the record holds no %s", c.from)
		}
		if err := unseal(bad, &back); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s changed to %s: unseal = %v, want ErrCorrupt", c.from, c.to, err)
		}
	}

	// A record without a seal is refused: removing the seal is no way
	// around it.
	plain, _ := json.Marshal(m)
	if err := unseal(plain, &back); !errors.Is(err, errNotSealed) {
		t.Errorf("an unsealed record: %v, want errNotSealed", err)
	}
}
