package views

//go:generate go run github.com/a-h/templ/cmd/templ@v0.3.1118 generate -path .
