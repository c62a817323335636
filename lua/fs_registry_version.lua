--! function: fs_registry_version
--! flags: no-writes
--! include: lib/registry.lua
-- The registry version of a namespace that the loaded library enforces (0: none), so a client can
-- tell whether the library is behind the registry stored in <ns>:{registry}.
-- KEYS[] none
-- ARGV[1] namespace
-- Returns an integer (0 for anything that is not a namespace with a compiled registry).
if #KEYS ~= 0 or #ARGV ~= 1 then return redis.error_reply('FSARG fs_registry_version takes no keys and a namespace') end
return REGISTRY.versions[ARGV[1]] or 0
