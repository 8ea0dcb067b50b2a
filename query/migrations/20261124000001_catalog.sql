-- The catalog (DESIGN.md decision 5). One file for SQLite and Postgres: only types both
-- read the same through sqlx's Any driver (TEXT, BIGINT, DOUBLE PRECISION); flags are
-- BIGINT 0/1, times epoch ms, lengths seconds.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX channels_owner ON channels(owner);

CREATE TABLE follows (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel)
);
CREATE INDEX follows_channel ON follows(channel);

-- Bearer tokens, kept as the hex SHA-256 of the token.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'creator', 'admin')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE streams (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    playback_url TEXT NOT NULL DEFAULT '',
    is_test BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'OFFLINE' CHECK (status IN ('OFFLINE', 'LIVE', 'ENDED')),
    live_at BIGINT,
    ended_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX streams_channel ON streams(channel);

-- One current key per stream, kept as the hex SHA-256 of the key.
CREATE TABLE stream_keys (
    stream TEXT PRIMARY KEY REFERENCES streams(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every lifecycle change seen once (idempotence of record_lifecycle).
CREATE TABLE stream_lifecycle (
    stream TEXT NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    ts BIGINT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (stream, status, ts)
);

CREATE TABLE vods (
    id TEXT PRIMARY KEY,
    stream TEXT NOT NULL UNIQUE REFERENCES streams(id) ON DELETE CASCADE,
    channel TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    search_text TEXT NOT NULL DEFAULT '',
    thumbnail TEXT NOT NULL DEFAULT '',
    hls_url TEXT NOT NULL DEFAULT '',
    mp4_url TEXT NOT NULL DEFAULT '',
    duration_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    file_size BIGINT NOT NULL DEFAULT 0,
    resolution TEXT NOT NULL DEFAULT '',
    view_count BIGINT NOT NULL DEFAULT 0,
    like_count BIGINT NOT NULL DEFAULT 0,
    clip_count BIGINT NOT NULL DEFAULT 0,
    is_public BIGINT NOT NULL DEFAULT 1,
    is_test BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'PROCESSING' CHECK (status IN ('PROCESSING', 'READY', 'FAILED')),
    live_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX vods_channel_created ON vods(channel, created_at);
CREATE INDEX vods_channel_views ON vods(channel, view_count);
CREATE INDEX vods_created ON vods(created_at);

CREATE TABLE watch_progress (
    user_id TEXT NOT NULL,
    vod TEXT NOT NULL REFERENCES vods(id) ON DELETE CASCADE,
    position_s DOUBLE PRECISION NOT NULL,
    percentage DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, vod)
);
CREATE INDEX watch_progress_user_updated ON watch_progress(user_id, updated_at);

CREATE TABLE clips (
    id TEXT PRIMARY KEY,
    vod TEXT REFERENCES vods(id) ON DELETE SET NULL,
    stream TEXT NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    channel TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    creator TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    -- Seconds since the stream went LIVE: the same moment in the live HLS and the VOD.
    start_s DOUBLE PRECISION NOT NULL,
    end_s DOUBLE PRECISION NOT NULL,
    -- The HLS cut from: the VOD's, or the stream's live playlist (an EVENT playlist
    -- that starts at LIVE, so start_s means the same moment in both).
    source_url TEXT NOT NULL,
    clip_url TEXT NOT NULL DEFAULT '',
    thumbnail TEXT NOT NULL DEFAULT '',
    view_count BIGINT NOT NULL DEFAULT 0,
    like_count BIGINT NOT NULL DEFAULT 0,
    share_count BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'PROCESSING' CHECK (status IN ('PROCESSING', 'READY', 'FAILED', 'DELETED')),
    failure TEXT NOT NULL DEFAULT '',
    published BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX clips_channel_created ON clips(channel, created_at);
CREATE INDEX clips_vod ON clips(vod);

CREATE TABLE clip_likes (
    clip TEXT NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (clip, user_id)
);

-- The durable media job queue. A RUNNING job whose lease passed is taken again.
CREATE TABLE media_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('clip', 'clip_thumbnail', 'vod_thumbnail')),
    -- The clip or VOD the job works on.
    target TEXT NOT NULL,
    -- Second of the thumbnail (clip_thumbnail, vod_thumbnail).
    at_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX media_jobs_status ON media_jobs(status, created_at);

-- Webhook deliveries already applied (redelivery is a 200 that changes nothing).
CREATE TABLE webhook_deliveries (
    body_hash TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries(received_at);
