// Command latencyproxy is the benchmark's stand-in for an object store in
// another building: an HTTP reverse proxy that holds every request for a
// fixed delay before passing it on, and counts the requests it passed.
//
//	latencyproxy -listen 127.0.0.1:0 -target http://127.0.0.1:9000 -delay 20ms -addr-file F
//
// It keeps the Host header the client sent, so S3 signatures made for the
// proxy's address still verify at the target. GET /-/requests answers the
// number of requests passed so far (a name no bucket can have; it is not
// counted itself). Used by scripts/bench-scale.sh.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "URL of the server behind the proxy")
	delay := flag.Duration("delay", 20*time.Millisecond, "time added to each request")
	addrFile := flag.String("addr-file", "", "write the address listened on to this file")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("latencyproxy: -target: give the URL of the server behind the proxy")
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	direct := rp.Director
	rp.Director = func(r *http.Request) {
		host := r.Host
		direct(r)
		r.Host = host // the client signed this host
	}
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/-/requests" {
			fmt.Fprintln(w, n.Load())
			return
		}
		n.Add(1)
		time.Sleep(*delay)
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("latencyproxy: %v", err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			log.Fatalf("latencyproxy: %v", err)
		}
	}
	log.Fatal(http.Serve(ln, h))
}
