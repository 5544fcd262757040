// Package stripejson renders JSON as Stripe's API does: pretty-printed with
// a two-space indent, "id" and "object" first in every object, the other
// keys sorted. The fixture generator and webhooktest's fixture edits share
// it, so that an edited fixture looks like a generated one.
package stripejson

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// Encode renders v (maps, slices and scalars as encoding/json decodes them)
// with a trailing newline.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v, ""); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// encode writes v pretty-printed with "id" and "object" first in objects,
// the other keys sorted, as Stripe's API renders them.
func encode(b *bytes.Buffer, v any, indent string) error {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		rank := func(k string) int {
			switch k {
			case "id":
				return 0
			case "object":
				return 1
			}
			return 2
		}
		sort.Slice(keys, func(i, j int) bool {
			if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
				return ri < rj
			}
			return keys[i] < keys[j]
		})
		b.WriteString("{\n")
		for i, k := range keys {
			b.WriteString(indent + "  ")
			if err := scalar(b, k); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := encode(b, v[k], indent+"  "); err != nil {
				return err
			}
			if i < len(keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
		return nil
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteString("[\n")
		for i, e := range v {
			b.WriteString(indent + "  ")
			if err := encode(b, e, indent+"  "); err != nil {
				return err
			}
			if i < len(v)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
		return nil
	}
	return scalar(b, v)
}

func scalar(b *bytes.Buffer, v any) error {
	var s strings.Builder
	enc := json.NewEncoder(&s)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.WriteString(strings.TrimSuffix(s.String(), "\n"))
	return nil
}
