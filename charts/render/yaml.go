package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// writeYAML writes v (decoded JSON: maps, slices, strings, json.Number, bools, nil) as
// block-style YAML with sorted keys, as Helm's toYaml does. Strings that a YAML parser
// would read as something else are double-quoted (JSON escapes are valid YAML).
func writeYAML(b *strings.Builder, v interface{}, level int) error {
	pad := strings.Repeat("  ", level)
	switch t := v.(type) {
	case map[string]interface{}:
		if len(t) == 0 {
			b.WriteString("{}\n")
			return nil
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(pad + scalar(k) + ":")
			if err := writeChild(b, t[k], level+1); err != nil {
				return err
			}
		}
	case []interface{}:
		if len(t) == 0 {
			b.WriteString("[]\n")
			return nil
		}
		for _, item := range t {
			b.WriteString(pad + "-")
			switch item.(type) {
			case map[string]interface{}, []interface{}:
				if empty(item) {
					if err := writeChild(b, item, level+1); err != nil {
						return err
					}
					continue
				}
				// The first line of a nested block follows "- ", the rest is indented.
				var inner strings.Builder
				if err := writeYAML(&inner, item, level+1); err != nil {
					return err
				}
				b.WriteString(" " + strings.TrimPrefix(inner.String(), pad+"  "))
			default:
				if err := writeChild(b, item, level+1); err != nil {
					return err
				}
			}
		}
	default:
		s, err := scalarValue(v)
		if err != nil {
			return err
		}
		b.WriteString(pad + s + "\n")
	}
	return nil
}

func writeChild(b *strings.Builder, v interface{}, level int) error {
	switch t := v.(type) {
	case map[string]interface{}:
		if len(t) == 0 {
			b.WriteString(" {}\n")
			return nil
		}
		b.WriteString("\n")
		return writeYAML(b, v, level)
	case []interface{}:
		if len(t) == 0 {
			b.WriteString(" []\n")
			return nil
		}
		b.WriteString("\n")
		// Like sigs.k8s.io/yaml: a list under a key is not indented further.
		return writeYAML(b, v, level-1)
	default:
		s, err := scalarValue(v)
		if err != nil {
			return err
		}
		b.WriteString(" " + s + "\n")
		return nil
	}
}

func scalarValue(v interface{}) (string, error) {
	switch t := v.(type) {
	case nil:
		return "null", nil
	case bool:
		return fmt.Sprint(t), nil
	case json.Number:
		return t.String(), nil
	case float64, int, int64:
		return fmt.Sprint(t), nil
	case string:
		return scalar(t), nil
	default:
		return "", fmt.Errorf("toYaml: unsupported value of type %T", v)
	}
}

var (
	plain    = regexp.MustCompile(`^[A-Za-z_/.][A-Za-z0-9_ ./=@+-]*$|^[0-9]+[A-Za-z][A-Za-z0-9_./-]*$`)
	reserved = regexp.MustCompile(`^(?i:y|n|yes|no|on|off|true|false|null|~)$`)
	numeric  = regexp.MustCompile(`^[-+]?(\.?[0-9][0-9_.eE+-]*|\.inf|\.nan|0x[0-9a-fA-F]+|0o[0-7]+)$`)
)

// scalar renders a string plainly when that reads back as the same string, else quoted.
func scalar(s string) string {
	if s != "" && plain.MatchString(s) && !reserved.MatchString(s) && !numeric.MatchString(s) &&
		!strings.HasSuffix(s, " ") && !strings.Contains(s, " #") {
		return s
	}
	q, _ := json.Marshal(s)
	return string(q)
}
