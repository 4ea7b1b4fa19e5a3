-- Called by the "scripted" rule of edge.toml for requests carrying X-Script: yes.
-- `req` is read-only; the returned table uses the rules' vocabulary.
function scripted(req)
  if req:from_user() == "alice" then
    return { action = "proxy", to = "sip:127.0.0.1:5073", add_headers = { "X-Scripted: 1" } }
  end
  return { action = "reject", code = 404, reason = "Not Found" }
end
