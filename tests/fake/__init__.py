"""Tests of the fake RunningHub server (runninghub_async.testing) over real HTTP."""
