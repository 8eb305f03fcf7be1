package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// pageNames are the templates/NAME.html files, each rendered inside
// templates/layout.html.
var pageNames = []string{"signin", "error", "registry", "review", "images", "members", "tokens", "activity", "setup"}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"when":    when,
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"whenPtr": whenPtr,
	"plural":  plural,
	"add":     func(a, b int) int { return a + b },
	"join":    strings.Join,
}

// when shows a time in UTC, which is what the log and filters use.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func whenPtr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return when(*t)
}

// plural counts a regular English noun: "1 entry", "3 entries", "2 pulls".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if stem, ok := strings.CutSuffix(word, "y"); ok && stem != "" && !strings.ContainsRune("aeiou", rune(stem[len(stem)-1])) {
		return strconv.Itoa(n) + " " + stem + "ies"
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// showValue renders a diff value (decoded JSON of any shape) in a line.
func showValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "on"
		}
		return "off"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = showValue(e)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if h, ok := x["host"].(string); ok {
			s := h
			if a, _ := x["access"].(string); a != "" {
				s += " (" + accessLabel(a) + ")"
			}
			if d, _ := x["description"].(string); d != "" {
				s += " — " + d
			}
			return s
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func accessLabel(a string) string {
	switch a {
	case "pull":
		return "pull only"
	case "pull-push", "":
		return "pull and push"
	}
	return a
}
