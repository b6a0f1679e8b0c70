# libmariadb (the C client the mariadb CLI is built on) through ctypes:
# prepares sys.argv[1], opens a read-only cursor (STMT_ATTR_CURSOR_TYPE),
# fetches 2 rows per COM_STMT_FETCH (STMT_ATTR_PREFETCH_ROWS) and prints
# each row as col|col|... . PORT, TOKEN, CA come from the environment.
import ctypes, ctypes.util, os, sys
lib = ctypes.CDLL("libmariadb.so.3")
lib.mysql_init.restype = ctypes.c_void_p
lib.mysql_init.argtypes = [ctypes.c_void_p]
lib.mysql_ssl_set.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 5
lib.mysql_real_connect.restype = ctypes.c_void_p
lib.mysql_real_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
    ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p, ctypes.c_ulong]
lib.mysql_error.restype = ctypes.c_char_p
lib.mysql_error.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_init.restype = ctypes.c_void_p
lib.mysql_stmt_init.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_prepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong]
lib.mysql_stmt_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
lib.mysql_stmt_execute.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_field_count.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_field_count.restype = ctypes.c_uint
lib.mysql_stmt_bind_result.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
lib.mysql_stmt_fetch.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_error.restype = ctypes.c_char_p
lib.mysql_stmt_error.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_close.argtypes = [ctypes.c_void_p]
lib.mysql_close.argtypes = [ctypes.c_void_p]

class BIND(ctypes.Structure):
    _fields_ = [("length", ctypes.POINTER(ctypes.c_ulong)), ("is_null", ctypes.POINTER(ctypes.c_char)),
        ("buffer", ctypes.c_void_p), ("error", ctypes.POINTER(ctypes.c_char)), ("u", ctypes.c_void_p),
        ("store_param_func", ctypes.c_void_p), ("fetch_result", ctypes.c_void_p),
        ("skip_result", ctypes.c_void_p), ("buffer_length", ctypes.c_ulong), ("offset", ctypes.c_ulong),
        ("length_value", ctypes.c_ulong), ("flags", ctypes.c_uint), ("pack_length", ctypes.c_uint),
        ("buffer_type", ctypes.c_int), ("error_value", ctypes.c_char), ("is_unsigned", ctypes.c_char),
        ("long_data_used", ctypes.c_char), ("is_null_value", ctypes.c_char), ("extension", ctypes.c_void_p)]

def die(what):
    print(what, file=sys.stderr); sys.exit(1)

m = lib.mysql_init(None)
lib.mysql_ssl_set(m, None, None, os.environ["CA"].encode(), None, None)
if not lib.mysql_real_connect(m, b"127.0.0.1", b"ci-job", os.environ["TOKEN"].encode(), b"app",
                              int(os.environ["PORT"]), None, 0):
    die(lib.mysql_error(m))
st = lib.mysql_stmt_init(m)
sql = sys.argv[1].encode()
if lib.mysql_stmt_prepare(st, sql, len(sql)):
    die(lib.mysql_stmt_error(st))
cursor = ctypes.c_ulong(1)  # CURSOR_TYPE_READ_ONLY
if lib.mysql_stmt_attr_set(st, 1, ctypes.byref(cursor)):  # STMT_ATTR_CURSOR_TYPE
    die("attr cursor")
prefetch = ctypes.c_ulong(2)
if lib.mysql_stmt_attr_set(st, 2, ctypes.byref(prefetch)):  # STMT_ATTR_PREFETCH_ROWS
    die("attr prefetch")
if lib.mysql_stmt_execute(st):
    die(lib.mysql_stmt_error(st))
n = lib.mysql_stmt_field_count(st)
binds = (BIND * n)()
bufs = [ctypes.create_string_buffer(256) for _ in range(n)]
lens = [ctypes.c_ulong(0) for _ in range(n)]
nulls = [ctypes.c_char(0) for _ in range(n)]
for i in range(n):
    binds[i].buffer_type = 254  # MYSQL_TYPE_STRING
    binds[i].buffer = ctypes.cast(bufs[i], ctypes.c_void_p)
    binds[i].buffer_length = 256
    binds[i].length = ctypes.pointer(lens[i])
    binds[i].is_null = ctypes.pointer(nulls[i])
if lib.mysql_stmt_bind_result(st, binds):
    die(lib.mysql_stmt_error(st))
while True:
    r = lib.mysql_stmt_fetch(st)
    if r == 100:  # MYSQL_NO_DATA
        break
    if r not in (0, 101):
        die(lib.mysql_stmt_error(st))
    print("|".join("NULL" if nulls[i].value != b"\0" else bufs[i].raw[:lens[i].value].decode() for i in range(n)))
lib.mysql_stmt_close(st)
lib.mysql_close(m)
