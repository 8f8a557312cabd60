# Sourced by the benchmark and soak scripts (not run on its own).
#
# create_chat_server ADDR ID NAME: signs in a guest on the server at ADDR (HOST:PORT) and
# creates the chat server ID named NAME, which the load generator's members then join.
# Fails (curl -f) when the server refuses either request.
create_chat_server() {
  local addr=$1 id=$2 name=$3 token
  token=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"displayName":"bench"}' \
    "http://$addr/api/auth/guest" | sed -E 's/.*"token":"([^"]+)".*/\1/')
  curl -fsS -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"id\":\"$id\",\"name\":\"$name\"}" "http://$addr/api/servers" > /dev/null
}
