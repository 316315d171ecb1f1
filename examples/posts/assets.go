package main

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
)

// assets holds the templates and the static files, so that the binary is
// all a deployment needs.
//
//go:embed templates/*.html static
var assets embed.FS

// pageNames are the pages, each rendered inside templates/layout.html.
var pageNames = []string{"list", "post", "form", "error", "nodes"}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s page: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// staticFiles returns the files served under /static/.
func staticFiles() (fs.FS, error) {
	return fs.Sub(assets, "static")
}
