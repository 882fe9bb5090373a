// Command render renders a Helm chart's templates the way `helm template` does, with Go's
// text/template and a small set of helpers defined here (no sprig, no third-party modules),
// so that the chart can be tested on machines without helm.
//
// Values are JSON (the Go standard library has no YAML parser): the chart's values.yaml
// converted to JSON first, then any overrides, deep-merged in order as Helm merges -f files.
//
//	go run ./charts/render -chart charts/ecr-operator -values defaults.json -values override.json
//	go run ./charts/render -chart charts/ecr-operator -values defaults.json -json
//
// Output: the rendered manifests as a YAML stream with `# Source:` comments (like helm
// template), or with -json one JSON object {"values": merged, "manifests": [{source,
// content}], "notes": text} for tests.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

type manifest struct {
	Source  string `json:"source"`
	Content string `json:"content"`
}

type output struct {
	Values    map[string]interface{} `json:"values"`
	Manifests []manifest             `json:"manifests"`
	Notes     string                 `json:"notes"`
}

func main() {
	var files valueFiles
	chartDir := flag.String("chart", "", "chart directory (holds Chart.yaml and templates/)")
	release := flag.String("release-name", "ecr-operator", "release name")
	namespace := flag.String("namespace", "ecr-system", "release namespace")
	asJSON := flag.Bool("json", false, "print one JSON object instead of a YAML stream")
	strict := flag.Bool("strict", false, "fail on a reference to a value that does not exist (like helm lint --strict)")
	flag.Var(&files, "values", "JSON values file (repeatable; later files override earlier ones)")
	flag.Parse()
	if *chartDir == "" {
		fmt.Fprintln(os.Stderr, "render: -chart is required")
		os.Exit(2)
	}
	out, err := render(*chartDir, *release, *namespace, files, *strict)
	if err != nil {
		fmt.Fprintf(os.Stderr, "render: %v\n", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(os.Stderr, "render: %v\n", err)
			os.Exit(1)
		}
		return
	}
	for _, m := range out.Manifests {
		fmt.Fprintf(w, "---\n# Source: %s\n%s\n", m.Source, strings.TrimSpace(m.Content))
	}
}

func render(chartDir, release, namespace string, files []string, strict bool) (*output, error) {
	chart, err := readChartYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	values := map[string]interface{}{}
	for _, f := range files {
		v, err := readJSON(f)
		if err != nil {
			return nil, err
		}
		values = mergeValues(values, v)
	}
	chartName := chart["Name"].(string)
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name":      release,
			"Namespace": namespace,
			"Service":   "Helm",
			"IsInstall": true,
			"IsUpgrade": false,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.33.0", "Major": "1", "Minor": "33"},
		},
	}

	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	missing := "missingkey=zero"
	if strict {
		missing = "missingkey=error"
	}
	root := template.New("chart").Option(missing)
	root.Funcs(funcs(root))
	var names []string
	for _, p := range paths {
		base := filepath.Base(p)
		if !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") ||
			strings.HasSuffix(base, ".tpl") || strings.HasSuffix(base, ".txt")) {
			continue
		}
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		name := chartName + "/templates/" + base
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}

	out := &output{Values: values}
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") {
			continue // partials: only their `define`s matter
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			return nil, err
		}
		// Helm renders a missing value as "" (missingkey=zero prints "<no value>").
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			out.Notes = text
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		out.Manifests = append(out.Manifests, manifest{Source: name, Content: text})
	}
	return out, nil
}

// readChartYAML reads the top-level scalar fields of Chart.yaml (name, version, appVersion,
// ...) into the names templates use: .Chart.Name, .Chart.Version, .Chart.AppVersion.
func readChartYAML(path string) (map[string]interface{}, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	chart := map[string]interface{}{}
	for _, line := range strings.Split(string(text), "\n") {
		if line == "" || line[0] == ' ' || line[0] == '#' || line[0] == '-' {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		if value == "" {
			continue
		}
		chart[strings.ToUpper(key[:1])+key[1:]] = value
	}
	if _, ok := chart["Name"].(string); !ok {
		return nil, fmt.Errorf("%s: no name", path)
	}
	return chart, nil
}

func readJSON(path string) (map[string]interface{}, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v map[string]interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if v == nil {
		v = map[string]interface{}{}
	}
	return v, nil
}

// mergeValues merges src over dst as Helm merges values files: maps merge key by key,
// anything else replaces, and null deletes the key.
func mergeValues(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = mergeValues(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// funcs are the helpers the chart's templates use, with Helm's (sprig's) semantics.
func funcs(root *template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			if err := root.ExecuteTemplate(&buf, name, data); err != nil {
				return "", err
			}
			return buf.String(), nil
		},
		"required": func(msg string, v interface{}) (interface{}, error) {
			if v == nil {
				return nil, errors.New(msg)
			}
			if s, ok := v.(string); ok && s == "" {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"fail": func(msg string) (string, error) { return "", errors.New(msg) },
		"default": func(d interface{}, v ...interface{}) interface{} {
			if len(v) == 0 || empty(v[0]) {
				return d
			}
			return v[0]
		},
		"empty": empty,
		"toYaml": func(v interface{}) (string, error) {
			var buf strings.Builder
			if err := writeYAML(&buf, v, 0); err != nil {
				return "", err
			}
			return strings.TrimSuffix(buf.String(), "\n"), nil
		},
		"toJson": func(v interface{}) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"quote": func(vs ...interface{}) string {
			var out []string
			for _, v := range vs {
				if v != nil {
					out = append(out, fmt.Sprintf("%q", str(v)))
				}
			}
			return strings.Join(out, " ")
		},
		"trunc": func(n int, s string) string {
			if n >= 0 && len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func str(v interface{}) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	default:
		return fmt.Sprint(v)
	}
}

// empty is sprig's notion of an empty value: nil, false, 0, "", and empty collections.
func empty(v interface{}) bool {
	switch t := v.(type) {
	case nil:
		return true
	case bool:
		return !t
	case string:
		return t == ""
	case json.Number:
		f, err := t.Float64()
		return err == nil && f == 0
	case float64:
		return t == 0
	case int:
		return t == 0
	case map[string]interface{}:
		return len(t) == 0
	case []interface{}:
		return len(t) == 0
	default:
		return false
	}
}
