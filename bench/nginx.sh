# Shared by the benchmarks: a loopback nginx serving a folder. Sourced.

# start_nginx WORK ROOT PORT [DIRECTIVES]: serves ROOT on 127.0.0.1:PORT
# (with directory listings), its files and logs under WORK/nginx, and stops
# it when the script exits. DIRECTIVES go into the server block. Sets NGINX
# to its process id.
start_nginx() {
    local work=$1 root=$2 port=$3 directives=${4:-}
    mkdir -p "$work/nginx" "$root"
    cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    types { application/json json; application/octet-stream bin; }
    client_body_temp_path $work/nginx;
    proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx;
    scgi_temp_path $work/nginx;
    server { listen 127.0.0.1:$port; root $root; autoindex on; $directives }
}
CONF
    nginx -c "$work/nginx/nginx.conf" &
    NGINX=$!
    for _ in $(seq 50); do
        curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    say "nginx did not start; see $work/nginx/error.log"
    exit 1
}
