# webrtcvad comes from the webrtcvad-wheels distribution (the contrib hook asks for "webrtcvad" metadata).
from PyInstaller.utils.hooks import copy_metadata
datas = copy_metadata("webrtcvad-wheels")
