package inventory

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestExampleShowsEveryField keeps deploy/inventory.example.yml a complete
// reference: every YAML field of the inventory types appears in it.
func TestExampleShowsEveryField(t *testing.T) {
	ex, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ == reflect.TypeOf(Secret{}) {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if !regexp.MustCompile(`(?m)(^|[\s{,#])` + regexp.QuoteMeta(tag) + `:`).Match(ex) {
				t.Errorf("field %s (%s.%s) is not shown in %s", tag, typ.Name(), f.Name, examplePath)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Inventory{}))
}
