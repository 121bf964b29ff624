#!/usr/bin/env python3
"""Records the request bodies kubectl sends, for the protobuf golden tests.

A throwaway plain-HTTP server with just enough discovery for `kubectl create`: every write is
saved as <name>.pb (protobuf) or <name>.json and answered with a 500 Status, so nothing needs to
exist. Usage (see ../README.md):

    python3 capture.py 18777 OUTDIR &
    export KUBECONFIG=OUTDIR/kubeconfig      # written by this script
    echo namespace > OUTDIR/current; kubectl create namespace ns1
    kubectl create namespace ns1 --dry-run=client -o json > OUTDIR/namespace.json
"""
import http.server
import json
import os
import sys

PORT, OUT = int(sys.argv[1]), sys.argv[2]
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, 'kubeconfig'), 'w') as f:
    f.write(f'''apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{PORT}"}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: c
users: [{{name: u, user: {{}}}}]
''')

CORE = [('namespaces', 'Namespace', False), ('configmaps', 'ConfigMap', True), ('secrets', 'Secret', True),
        ('services', 'Service', True), ('pods', 'Pod', True)]


def resources(gv, items):
    return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': gv, 'resources': [
        {'name': n, 'singularName': k.lower(), 'namespaced': ns, 'kind': k, 'verbs': ['create', 'get', 'list']}
        for n, k, ns in items]}


DISCOVERY = {
    '/api': {'kind': 'APIVersions', 'versions': ['v1'],
             'serverAddressByClientCIDRs': [{'clientCIDR': '0.0.0.0/0', 'serverAddress': '127.0.0.1'}]},
    '/apis': {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': [
        {'name': 'networking.k8s.io', 'versions': [{'groupVersion': 'networking.k8s.io/v1', 'version': 'v1'}],
         'preferredVersion': {'groupVersion': 'networking.k8s.io/v1', 'version': 'v1'}}]},
    '/api/v1': resources('v1', CORE),
    '/apis/networking.k8s.io/v1': resources('networking.k8s.io/v1', [('ingresses', 'Ingress', True)]),
}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log(self, line):
        with open(os.path.join(OUT, 'log.txt'), 'a') as f:
            f.write(line + '\n')

    def do_GET(self):
        self.log(f'GET {self.path} Accept: {self.headers.get("Accept")}')
        doc = DISCOVERY.get(self.path.split('?')[0])
        self.send(200 if doc else 404, doc or {'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure', 'reason': 'NotFound', 'code': 404})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        try:
            name = open(os.path.join(OUT, 'current')).read().strip()
        except FileNotFoundError:
            name = 'request'
        ct = self.headers.get('Content-Type', '')
        ext = 'pb' if 'protobuf' in ct else 'body.json'
        with open(os.path.join(OUT, f'{name}.{ext}'), 'wb') as f:
            f.write(body)
        self.log(f'{self.command} {self.path} Content-Type: {ct} Accept: {self.headers.get("Accept")} -> {name}.{ext}')
        self.send(500, {'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure', 'message': 'captured', 'code': 500})

    do_PUT = do_PATCH = do_DELETE = do_POST


http.server.HTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
