#!/bin/sh
# Makes the tiny media files FakeCometAPI serves as task outputs, into
# cometrunway/testing/media/ (run from the repository root: sh tests/media/make_media.sh).
# Needs ffmpeg with libx264 and libmp3lame (Debian 12: apt-get install ffmpeg, 5.1).
# The files are committed; this script says exactly how they were made.
set -eu
out=cometrunway/testing/media
mkdir -p "$out"
common="-y -hide_banner -loglevel error"
plain="-map_metadata -1 -fflags +bitexact"  # no dates or encoder tags: same bytes each run

# A 2-second 320x180 (16:9) H.264 video at 12 fps, yuv420p baseline profile, moov atom first
# (+faststart) so that browsers play it while it downloads; no audio track.
ffmpeg $common -f lavfi -i "testsrc2=size=320x180:rate=12:duration=2" \
    -c:v libx264 -profile:v baseline -level 3.0 -pix_fmt yuv420p -crf 38 -preset veryslow \
    -flags:v +bitexact -movflags +faststart $plain "$out/video.mp4"

# The poster (first frame) and the last frame of that video, and a still "image" output.
ffmpeg $common -i "$out/video.mp4" -frames:v 1 -flags:v +bitexact $plain "$out/poster.png"
ffmpeg $common -sseof -0.1 -i "$out/video.mp4" -update 1 -frames:v 1 -flags:v +bitexact \
    $plain "$out/last_frame.png"
ffmpeg $common -f lavfi -i "smptebars=size=320x180" -frames:v 1 -flags:v +bitexact \
    $plain "$out/image.png"

# One second of a 440 Hz tone: MP3, mono, 22.05 kHz, 32 kbit/s, no ID3 tags.
ffmpeg $common -f lavfi -i "sine=frequency=440:sample_rate=22050:duration=1" \
    -c:a libmp3lame -b:a 32k -ac 1 -id3v2_version 0 -write_id3v1 0 -write_xing 0 \
    -flags:a +bitexact $plain "$out/audio.mp3"

ls -l "$out"
