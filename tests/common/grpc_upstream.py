"""A gRPC upstream for tests/http2_grpc.rs: service test.Echo with raw-bytes
methods (no .proto): Unary echoes, Stream answers each message, Secret
echoes too (the gateway's rules are to block it). Each call's
`authorization` metadata is appended to the log file, so the test can see
which credential reached the upstream."""
import sys
from concurrent import futures

import grpc

port, log = sys.argv[1], sys.argv[2]


def seen(ctx, what):
    md = dict(ctx.invocation_metadata())
    with open(log, "a") as f:
        f.write(f"{what} auth=[{md.get('authorization', '')}] via=[{md.get('via', '')}]\n")


def unary(req, ctx):
    seen(ctx, "unary")
    return b"echo:" + req


def stream(reqs, ctx):
    seen(ctx, "stream")
    for r in reqs:
        yield b"s:" + r


def big(req, ctx):
    seen(ctx, "big")
    return bytes(range(256)) * (int(req) // 256)


handler = grpc.method_handlers_generic_handler(
    "test.Echo",
    {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
        "Secret": grpc.unary_unary_rpc_method_handler(unary),
        "Big": grpc.unary_unary_rpc_method_handler(big),
    },
)
server = grpc.server(
    futures.ThreadPoolExecutor(max_workers=8),
    options=[("grpc.max_send_message_length", 64 << 20)],
)
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port(f"127.0.0.1:{port}")
server.start()
server.wait_for_termination()
