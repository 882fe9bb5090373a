package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScalarQuotesWhatYAMLWouldReadAsAnotherType(t *testing.T) {
	cases := map[string]string{
		"info":                  "info",
		"50m":                   "50m",
		"eu-west-1":             "eu-west-1",
		"kubernetes.io/os":      "kubernetes.io/os",
		"ecr_operator=debug":    "ecr_operator=debug",
		"":                      `""`,
		"true":                  `"true"`,
		"On":                    `"On"`,
		"null":                  `"null"`,
		"~":                     `"~"`,
		"1":                     `"1"`,
		"1.0":                   `"1.0"`,
		"1e3":                   `"1e3"`,
		"0x1F":                  `"0x1F"`,
		"0.1.0":                 `"0.1.0"`,
		"2012-10-17":            `"2012-10-17"`,
		"a: b":                  `"a: b"`,
		"x #y":                  `"x #y"`,
		"@at":                   `"@at"`,
		"*star":                 `"*star"`,
		"trailing ":             `"trailing "`,
		"line\nbreak":           `"line\nbreak"`,
		"arn:aws:iam::1:role/x": `"arn:aws:iam::1:role/x"`,
	}
	for in, want := range cases {
		if got := scalar(in); got != want {
			t.Errorf("scalar(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestToYamlBlockStyle(t *testing.T) {
	var v interface{}
	dec := json.NewDecoder(strings.NewReader(`{"b": [1, {"x": "y", "z": []}, [true]], "a": {}, "c": {"d": null}}`))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := writeYAML(&b, v, 0); err != nil {
		t.Fatal(err)
	}
	want := "a: {}\nb:\n- 1\n- x: \"y\"\n  z: []\n- - true\nc:\n  d: null\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestMergeValuesLikeHelm(t *testing.T) {
	dst := map[string]interface{}{"a": map[string]interface{}{"x": "1", "y": "2"}, "b": []interface{}{"k"}, "c": "keep"}
	src := map[string]interface{}{"a": map[string]interface{}{"y": "3"}, "b": []interface{}{}, "c": nil}
	got, _ := json.Marshal(mergeValues(dst, src))
	if string(got) != `{"a":{"x":"1","y":"3"},"b":[]}` {
		t.Errorf("merge: %s", got)
	}
}

func TestHelpers(t *testing.T) {
	if indent(2, "a\nb") != "  a\n  b" {
		t.Error("indent")
	}
	if !empty(json.Number("0")) || empty(json.Number("1")) || !empty(map[string]interface{}{}) || empty("x") {
		t.Error("empty")
	}
}
