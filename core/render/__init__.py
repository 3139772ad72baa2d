"""The render path of a dub, one concern per module:

- `schedule`: which source frame and which stretch of the voice each output frame carries;
- `source`: those source frames, streamed in output order;
- `renderer`: a batch of output frames rendered, composited, with teeth and the editor's corrections;
- `writer`: a range of output frames rendered into a file, decode / render / encode overlapped on both cores;
- `stages`: the time each stage took.

`core.pipeline` prepares a clip (probe, track, adapt, engines) and hands it to this package.
"""
