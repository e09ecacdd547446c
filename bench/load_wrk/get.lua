-- GET the paths given after `--`, in turn (each thread starts at its own offset), with
-- the header in LOAD_HEADER ("Name: value", optional: an API key or a session cookie).
-- done() prints one line, "LOAD_RESULT {json}", for bench/load.py: wrk itself prints only
-- the 50/75/90/99th percentiles and no histogram of statuses.
local common = dofile(os.getenv("LOAD_WRK_DIR") .. "/common.lua")

setup = common.setup
response = common.response
done = common.done

function init(args)
   common.init()
   paths = {}
   for _, path in ipairs(args) do
      table.insert(paths, path)
   end
   if #paths == 0 then
      error("give the paths to GET after --")
   end
   turn = id % #paths
end

function request()
   turn = turn % #paths + 1
   return wrk.format("GET", paths[turn], common.headers)
end
