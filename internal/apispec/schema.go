package apispec

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Schema is a JSON Schema (the subset AsyncAPI 3's default schema format
// shares with JSON Schema draft 7), as ordered YAML.
type Schema = *Map

var timeType = reflect.TypeFor[time.Time]()

// schemas turns Go types into named JSON Schemas. A struct type becomes a
// component named after it and is referred to by $ref; everything else is
// inline. Field descriptions come from docs ("Type.Field" -> comment).
type schemas struct {
	docs  Docs
	named map[string]Schema // component name -> schema
	order []string
}

func newSchemas(docs Docs) *schemas {
	return &schemas{docs: docs, named: map[string]Schema{}}
}

// ref returns the schema of t, registering t (and the struct types it
// holds) as components.
func (s *schemas) ref(t reflect.Type) Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType {
		return s.inline(t)
	}
	name := t.Name()
	if _, ok := s.named[name]; !ok {
		s.named[name] = nil // taken: a recursive type refers to itself
		s.order = append(s.order, name)
		s.named[name] = s.object(t)
	}
	return NewMap().Set("$ref", "#/components/schemas/"+name)
}

func (s *schemas) inline(t reflect.Type) Schema {
	switch {
	case t == timeType:
		return NewMap().Set("type", "string").Set("format", "date-time")
	case t.Kind() == reflect.String:
		return NewMap().Set("type", "string")
	case t.Kind() == reflect.Bool:
		return NewMap().Set("type", "boolean")
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return NewMap().Set("type", "number")
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return NewMap().Set("type", "integer")
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return NewMap().Set("type", "integer").Set("minimum", 0)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return NewMap().Set("type", "string").Set("contentEncoding", "base64")
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return NewMap().Set("type", "array").Set("items", s.ref(t.Elem()))
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return NewMap().Set("type", "object").Set("additionalProperties", s.ref(t.Elem()))
	case t.Kind() == reflect.Pointer:
		return s.ref(t)
	}
	panic(fmt.Sprintf("apispec: no JSON Schema for Go type %s", t))
}

// object is the schema of a struct: its JSON fields as properties, those
// without omitempty required, nothing else allowed (the decoders of
// outside input refuse unknown fields).
func (s *schemas) object(t reflect.Type) Schema {
	m := NewMap().Set("type", "object")
	if d := s.docs[t.Name()]; d != "" {
		m.Set("description", d)
	}
	props := NewMap()
	var required []string
	for f := range jsonFields(t) {
		p := s.ref(f.Type)
		if d := s.docs[t.Name()+"."+f.GoName]; d != "" {
			if p.Has("$ref") {
				// JSON Schema draft 7 ignores siblings of $ref.
				p = NewMap().Set("description", d).Set("allOf", []any{p})
			} else {
				p.Set("description", d)
			}
		}
		props.Set(f.Name, p)
		if !f.OmitEmpty {
			required = append(required, f.Name)
		}
	}
	m.Set("properties", props)
	if len(required) > 0 {
		m.Set("required", required)
	}
	return m.Set("additionalProperties", false)
}

// Field is one field of a struct as encoding/json sees it.
type Field struct {
	Name      string // the JSON name
	GoName    string
	Type      reflect.Type
	OmitEmpty bool
}

// jsonFields yields the exported fields of struct t under their JSON names,
// as encoding/json encodes them (embedded structs are not used in messages
// and are refused).
func jsonFields(t reflect.Type) func(yield func(Field) bool) {
	return func(yield func(Field) bool) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			if sf.Anonymous {
				panic(fmt.Sprintf("apispec: embedded field %s.%s", t.Name(), sf.Name))
			}
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = sf.Name
			}
			f := Field{Name: name, GoName: sf.Name, Type: sf.Type, OmitEmpty: hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero")}
			if !yield(f) {
				return
			}
		}
	}
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}
