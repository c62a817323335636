--! function: fs_version
--! flags: no-writes
-- The version of the loaded fsredis library: "<package version>+<digest of the Lua source>".
-- The client compares it with its own and reloads the library when they differ.
-- KEYS[] none
-- ARGV[] none
-- Returns a string.
return '@LIBRARY_VERSION@'
