-- wrk script: POST /upload of a small text attachment, as user u_load<N>.
local boundary = "wrkboundary"
local content = string.rep("mediad load test line\n", 200) -- 4.4 KB
wrk.method = "POST"
wrk.path = "/upload?purpose=attachment"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n" ..
  'Content-Disposition: form-data; name="file"; filename="load.txt"\r\n' ..
  "Content-Type: text/plain\r\n\r\n" .. content .. "\r\n--" .. boundary .. "--\r\n"
local n = 0
request = function()
  n = n + 1
  wrk.headers["x-user-id"] = "u_load" .. (n % 50)
  return wrk.format()
end
