// Package e2e holds the browser client's end-to-end tests: wspush.js and
// the demo page run in a real headless Chromium, driven through the
// DevTools protocol (chromedp), against real wspushd processes built from
// this repository and, for the cluster, a real Redis. It owns only tests;
// there is no code to import.
//
// The tests need chromium and redis-server on PATH (scripts/deps.sh
// installs both). Without one they skip, except with CI=true, where a
// missing dependency is a failure.
//
// go test ./clients/js/e2e -run TestDemo -args -screenshot=../../../docs/demo.png
// saves the demo page, with a few deliveries, as the README's picture.
package e2e
