-- POST /api/v1/incidents/: one declaration a request, its title unique in the run
-- ("<LOAD_TITLE_PREFIX> t<thread> n<counter>"), so bench/load.py can count afterwards
-- what was persisted. Severity follows a fixed cycle of ten (five SEV4, four SEV3, one
-- SEV2: no SEV1, which would page), the same in every run; type outage, one service
-- (LOAD_SERVICE), bench-commander as commander. LOAD_HEADER carries the API key.
local common = dofile(os.getenv("LOAD_WRK_DIR") .. "/common.lua")

setup = common.setup
response = common.response
done = common.done

local SEVERITIES = {"SEV4", "SEV3", "SEV4", "SEV3", "SEV4", "SEV2", "SEV4", "SEV3", "SEV4", "SEV3"}

function init(args)
   common.init()
   common.headers["Content-Type"] = "application/json"
   prefix = os.getenv("LOAD_TITLE_PREFIX")
   service = os.getenv("LOAD_SERVICE")
   commander = os.getenv("LOAD_COMMANDER")
   counter = 0
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"title": "%s t%d n%d", "severity": "%s", "type": "outage", '
         .. '"environment": "production", "services": ["%s"], "commander": "%s", '
         .. '"summary": "Declared by the load benchmark."}',
      prefix, id, counter, SEVERITIES[(counter - 1) % #SEVERITIES + 1], service, commander
   )
   return wrk.format("POST", "/api/v1/incidents/", common.headers, body)
end
