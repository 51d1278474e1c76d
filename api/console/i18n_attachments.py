"""Photos as evidence: words in 简体中文 and English, merged into the console's catalogue
(``api/console/i18n.py``). The ``photo_*`` refusals are the keys ``cases.photos.PhotoRefused`` and the
upload routes name, the ``idempotency_*`` ones api/idempotency.py's answers name; the console shows
these words, API clients read the English ``detail``."""

from __future__ import annotations

ATTACHMENT_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "photo_too_large": "照片太大：每张不超过 10 MB。",
        "photo_empty": "文件是空的，请重新选择照片。",
        "photo_not_image": "这不是照片：只接受 JPEG、PNG、WebP（或 HEIC）图片。",
        "photo_damaged": "图片已损坏或不完整，请重新拍摄或选择。",
        "photo_too_many_pixels": "图片像素过多（超过 6400 万像素），无法接收。",
        "photo_too_many": "一次最多上传 3 张照片。",
        "photo_none": "请选择要上传的照片。",
        "photo_store_down": "照片暂时无法保存，本次未保存任何内容，请稍后再试。",
        "photo_upload_body_too_large": "上传内容太大：一次最多 3 张、每张不超过 10 MB。",
        "photo_case_not_found": "找不到该工单，或不在您的辖区内。",
        "photo_sign_in": "请先登录。",
        "photo_csrf": "页面已过期，请刷新后重试。",
        "photos": "照片",
        "photo_add": "拍照或选择照片",
        "photo_keep_gps": "用照片的拍摄位置作为工单位置",
        "photo_open": "查看原图",
        "photo_alt": "工单照片",
        "photo_public": "已公开",
        "photo_make_public": "公开此照片",
        "photo_uploaded_by": "上传人",
        # Answers to a retried write (Idempotency-Key), for the phone's offline queue.
        "idempotency_key_reused": "这次提交与之前同一编号的提交内容不同，未执行；请作为新的操作重新提交。",
        "idempotency_in_progress": "同一操作正在处理中，请稍后重试。",
        "idempotency_key_invalid": "提交编号无效（最多 128 个字符，不含空格）。",
        "idempotency_secret_answer": "此操作的结果是只显示一次的密钥或登录，不会保存，因此不能重发；"
        "请不带提交编号再试。",
    },
    "en": {
        "photo_too_large": "The photo is too large: at most 10 MB each.",
        "photo_empty": "The file is empty: choose a photo again.",
        "photo_not_image": "This is not a photo: only JPEG, PNG, WebP (or HEIC) images are accepted.",
        "photo_damaged": "The image is damaged or incomplete: take or choose the photo again.",
        "photo_too_many_pixels": "The image has too many pixels (over 64 megapixels) to be accepted.",
        "photo_too_many": "At most 3 photos per upload.",
        "photo_none": "Choose a photo to upload.",
        "photo_store_down": "Photos cannot be saved just now; nothing was kept: try again later.",
        "photo_upload_body_too_large": "The upload is too large: at most 3 photos of 10 MB each.",
        "photo_case_not_found": "No such case, or it is outside your jurisdiction.",
        "photo_sign_in": "Please sign in first.",
        "photo_csrf": "The page has expired: reload it and try again.",
        "photos": "Photos",
        "photo_add": "Take or choose a photo",
        "photo_keep_gps": "Use the photo's position as the case's location",
        "photo_open": "Open the full photo",
        "photo_alt": "Photo of the case",
        "photo_public": "Public",
        "photo_make_public": "Make this photo public",
        "photo_uploaded_by": "Uploaded by",
        # Answers to a retried write (Idempotency-Key), for the phone's offline queue.
        "idempotency_key_reused": "This differs from the earlier request sent under the same key, so it was "
        "not applied: send it as a new action.",
        "idempotency_in_progress": "The same action is still being processed: try again in a moment.",
        "idempotency_key_invalid": "The request's key is invalid (at most 128 characters, no spaces).",
        "idempotency_secret_answer": "This request's answer is a secret shown once (or a sign-in): it is "
        "never stored, so it cannot be replayed. Send it without a key.",
    },
}
