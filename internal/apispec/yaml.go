package apispec

import (
	"bytes"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Map is a YAML mapping that keeps its keys in the order they were set, so
// that the document reads top-down (asyncapi, info, channels, ...) and
// regenerating it changes nothing that did not change.
type Map struct {
	keys []string
	vals map[string]any
}

// NewMap returns an empty Map.
func NewMap() *Map { return &Map{vals: map[string]any{}} }

// Set sets key to v (keeping its first position) and returns m.
func (m *Map) Set(key string, v any) *Map {
	if _, ok := m.vals[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.vals[key] = v
	return m
}

// Has reports whether key is set.
func (m *Map) Has(key string) bool {
	_, ok := m.vals[key]
	return ok
}

// Get returns the value of key.
func (m *Map) Get(key string) any { return m.vals[key] }

// Keys returns the keys in order.
func (m *Map) Keys() []string { return m.keys }

// MarshalYAML writes the mapping in key order.
func (m *Map) MarshalYAML() (any, error) { return node(m) }

func node(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case *Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range v.keys {
			val, err := node(v.vals[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			n.Content = append(n.Content, scalar(k, "!!str"), val)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range v {
			en, err := node(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, en)
		}
		return n, nil
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, e := range v {
			n.Content = append(n.Content, scalar(e, "!!str"))
		}
		return n, nil
	case string:
		return scalar(v, "!!str"), nil
	case int:
		return scalar(strconv.Itoa(v), "!!int"), nil
	case bool:
		return scalar(strconv.FormatBool(v), "!!bool"), nil
	}
	return nil, fmt.Errorf("apispec: no YAML for %T", v)
}

func scalar(s, tag string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: tag}
	if tag == "!!str" {
		// Quote what YAML would otherwise read as another type ("1.0.0"
		// is a string already; "true", "3" or "" are not).
		var probe any
		if err := yaml.Unmarshal([]byte(s), &probe); err != nil || probe == nil {
			n.Style = yaml.DoubleQuotedStyle
		} else if _, ok := probe.(string); !ok {
			n.Style = yaml.DoubleQuotedStyle
		}
	}
	return n
}

// Render writes doc as YAML, two-space indented, under a line that says it
// is generated.
func Render(doc *Map) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Generated from package messages by `go test ./internal/apispec -update`; do not edit.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
