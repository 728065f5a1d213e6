package apispec_test

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"sensorhub/internal/apispec"
	"sensorhub/messages"
)

var update = flag.Bool("update", false, "write asyncapi.yaml from the code")

const docPath = "../../asyncapi.yaml"

func generate(t *testing.T) []byte {
	t.Helper()
	docs, err := apispec.ReadDocs("../../messages")
	if err != nil {
		t.Fatal(err)
	}
	out, err := apispec.Render(apispec.Document(apispec.APIVersion, docs))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The committed document is what the code says: regenerate it with
// go test ./internal/apispec -update after changing package messages.
func TestAsyncAPIIsCurrent(t *testing.T) {
	want := generate(t)
	if *update {
		if err := os.WriteFile(docPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./internal/apispec -update)", err)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("asyncapi.yaml is not what package messages says; run go test ./internal/apispec -update and review the diff")
	}
}

// load reads the committed document as plain YAML, as a consumer would.
func load(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi = %v, want 3.0.0", doc["asyncapi"])
	}
	return doc
}

func section(t *testing.T, m map[string]any, path ...string) map[string]any {
	t.Helper()
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			t.Fatalf("asyncapi.yaml has no %s", strings.Join(path, "."))
		}
		m = next
	}
	return m
}

// Every subject that messages.Subjects builds is a channel of the
// document, and every NATS channel is one of those subjects: nothing
// missing, nothing extra.
func TestEverySubjectIsDescribed(t *testing.T) {
	subj := messages.DefaultSubjects()
	// Builders that name no subject of their own.
	notSubjects := map[string]string{
		"Prefix":      "the prefix itself",
		"ServiceName": "a micro service name",
		"Group":       "an endpoint group, the parent of the role's subjects",
		"Events":      "the wildcard over the events channel",
		"EventSource": "not a subject: the CloudEvents source of the Kafka records (ce_source)",
		"ServiceStats": "the micro protocol's stats subject of a service ($SRV.STATS.<name>, nats micro stats); " +
			"the bridges answer it with their own figures, which is how sensorhub.bridge.stats sees the tier",
	}
	want := map[string]bool{subj.Event("{sensorType}", "{kind}"): true}
	v := reflect.ValueOf(subj)
	for i := range v.NumMethod() {
		m := v.Type().Method(i)
		if _, skip := notSubjects[m.Name]; skip {
			continue
		}
		switch {
		case m.Name == "Health":
			for _, role := range messages.Services {
				want[subj.Health(role)] = true
			}
		case m.Name == "Event":
			// the events channel, with its parameters (above)
		case m.Type.NumIn() == 1 && m.Type.NumOut() == 1 && m.Type.Out(0).Kind() == reflect.String:
			want[v.Method(i).Call(nil)[0].String()] = true
		default:
			t.Fatalf("messages.Subjects.%s: a builder this test does not know; describe its subject in apispec.Operations and here", m.Name)
		}
	}
	have := map[string]bool{}
	for name, c := range section(t, load(t), "channels") {
		ch := c.(map[string]any)
		addr, _ := ch["address"].(string)
		if name == "inbox" || name == "kafkaEvents" {
			continue
		}
		have[addr] = true
	}
	for s := range want {
		if !have[s] {
			t.Errorf("subject %s is not a channel of asyncapi.yaml", s)
		}
	}
	for s := range have {
		if !want[s] {
			t.Errorf("channel %s is not a subject of messages.Subjects", s)
		}
	}
	topic := section(t, load(t), "channels", "kafkaEvents")["address"]
	if topic != messages.DefaultKafkaTopic {
		t.Errorf("kafka channel %v, want %s", topic, messages.DefaultKafkaTopic)
	}
}

// Every schema in the committed document has exactly the JSON fields of
// its Go type, and requires exactly those that are never omitted.
func TestSchemasMatchTheGoTypes(t *testing.T) {
	types := map[string]reflect.Type{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt.PkgPath() != reflect.TypeFor[messages.Empty]().PkgPath() {
			return
		}
		if _, seen := types[rt.Name()]; seen {
			return
		}
		types[rt.Name()] = rt
		for i := range rt.NumField() {
			walk(rt.Field(i).Type)
		}
	}
	for _, op := range apispec.Operations() {
		walk(op.Request)
		walk(op.Reply)
	}
	walk(reflect.TypeFor[messages.TestCompleted]())
	walk(reflect.TypeFor[messages.Error]())

	schemas := section(t, load(t), "components", "schemas")
	for name, rt := range types {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("no schema for messages.%s", name)
			continue
		}
		var wantProps, wantReq []string
		for i := range rt.NumField() {
			f := rt.Field(i)
			tag := f.Tag.Get("json")
			jname, opts, _ := strings.Cut(tag, ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if jname == "" {
				jname = f.Name
			}
			wantProps = append(wantProps, jname)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				wantReq = append(wantReq, jname)
			}
		}
		props, _ := s["properties"].(map[string]any)
		var haveProps []string
		for p := range props {
			haveProps = append(haveProps, p)
		}
		var haveReq []string
		if r, ok := s["required"].([]any); ok {
			for _, x := range r {
				haveReq = append(haveReq, x.(string))
			}
		}
		sort.Strings(wantProps)
		sort.Strings(haveProps)
		sort.Strings(wantReq)
		sort.Strings(haveReq)
		if !slices.Equal(wantProps, haveProps) {
			t.Errorf("schema %s has properties %v, messages.%s has %v", name, haveProps, name, wantProps)
		}
		if !slices.Equal(wantReq, haveReq) {
			t.Errorf("schema %s requires %v, want %v", name, haveReq, wantReq)
		}
	}
	for name := range schemas {
		if _, ok := types[name]; !ok {
			t.Errorf("schema %s is no type of package messages that a channel carries", name)
		}
	}
}

// The error envelope's code lists exactly the stable codes.
func TestErrorCodesAreListed(t *testing.T) {
	code := section(t, load(t), "components", "schemas", "Error", "properties", "code")
	var have []string
	for _, c := range code["enum"].([]any) {
		have = append(have, c.(string))
	}
	var want []string
	for _, c := range messages.Codes() {
		want = append(want, string(c))
	}
	if !slices.Equal(have, want) || len(want) == 0 {
		t.Fatalf("Error.code enum = %v, want %v", have, want)
	}
}

// Each operation's endpoint metadata (what `nats micro info` shows) names
// schemas and an operation that asyncapi.yaml has, and one subject is one
// operation, so that a service's endpoint finds its own.
func TestOperationMetadataIsInTheDocument(t *testing.T) {
	doc := load(t)
	schemas := section(t, doc, "components", "schemas")
	ops := section(t, doc, "operations")
	subj := messages.DefaultSubjects()
	seen := map[string]string{}
	for _, op := range apispec.Operations() {
		md := op.Metadata()
		for _, k := range []string{apispec.MetadataRequestSchema, apispec.MetadataReplySchema} {
			if _, ok := schemas[md[k]]; !ok {
				t.Errorf("%s: %s %q is not a schema of asyncapi.yaml", op.ID, k, md[k])
			}
		}
		if _, ok := ops[md[apispec.MetadataAsyncAPIOperation]]; !ok {
			t.Errorf("%s: operation %q is not in asyncapi.yaml", op.ID, md[apispec.MetadataAsyncAPIOperation])
		}
		addr := op.Subject(subj)
		if other, dup := seen[addr]; dup {
			t.Errorf("%s and %s share the subject %s", other, op.ID, addr)
		}
		seen[addr] = op.ID
		if got, ok := apispec.OperationOn(subj, addr); !ok || got.ID != op.ID {
			t.Errorf("OperationOn(%s) = %q, %v; want %s", addr, got.ID, ok, op.ID)
		}
	}
	if _, ok := apispec.OperationOn(subj, subj.Events()); ok {
		t.Errorf("OperationOn(%s) found an operation", subj.Events())
	}
}
