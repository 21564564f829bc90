"""The one native module: ``rtcdn.webrtc._fastsend`` (players' RTP send, see its source).

Optional: where it does not build (no compiler, no Python headers) the install still succeeds and
rtcdn sends the same packets from Python. Everything else is declared in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rtcdn.webrtc._fastsend",
            ["src/rtcdn/webrtc/_fastsend.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
