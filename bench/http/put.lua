-- put.lua: PUT the same 100-byte JSON document, over and over, to the
-- URL's path.  Every request keeps the version it replaces.
wrk.method = "PUT"
wrk.body = '{"id":"bench","name":"' .. string.rep("x", 100 - 24) .. '"}'
wrk.headers["Content-Type"] = "application/json"
