package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// A sealed object is a JSON record stored with the BLAKE3 of its bytes, so
// that damage that leaves it valid JSON (a flipped digit, a changed letter in
// a name) is found as surely as damage to a pack:
//
//	{"blake3": "<64 hex digits>", "body": <the record, indented>}
//
// The config, manifests and host records are sealed; they are named by
// number or by a fixed name, not by their content, so nothing else would
// notice.
type sealed struct {
	Blake3 string          `json:"blake3"`
	Body   json.RawMessage `json:"body"`
}

// seal returns v as a sealed object.
func seal(v any) ([]byte, error) {
	body, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"blake3\": \"%s\",\n  \"body\": ", contentID(body))
	b.Write(body)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// unseal decodes a sealed object into v after checking its sum. An object
// without a seal (written before records were sealed) is decoded whole.
func unseal(data []byte, v any) error {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s.Body == nil && s.Blake3 == "" {
		return json.Unmarshal(data, v)
	}
	if s.Body == nil || contentID(s.Body).String() != s.Blake3 {
		return fmt.Errorf("%w: the record does not match its BLAKE3 sum", ErrCorrupt)
	}
	return json.Unmarshal(s.Body, v)
}
