# Build Jarvis for Windows: a venv, the one-folder app (PyInstaller), its self-test, then the installer.
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1          (CPU build)
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1 -Cuda    (CUDA build, NVIDIA GPUs)
# Needs: Python 3.11 (python.org), Visual Studio Build Tools with C++ and CMake (llama-cpp-python compiles
# llama.cpp), Inno Setup 6 (iscc.exe on PATH or in its default folder). Not run by this project's CI,
# which is Linux: see installer/README.md for what has and has not been tried.
param([switch]$Cuda, [string]$TorchIndex = "")
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$variant = if ($Cuda) { "cuda" } else { "cpu" }
$venv = ".venv-win-$variant"
if (-not (Test-Path "$venv\Scripts\python.exe")) { py -3.11 -m venv $venv }
$py = "$venv\Scripts\python.exe"
$torch = (Select-String -Path requirements.txt -Pattern '^torch==').Line
# PyPI's Windows torch wheels are CPU-only; the CUDA build comes from PyTorch's own index.
# -TorchIndex picks another CUDA version's index (e.g. .../whl/cu128 for older drivers).
$index = if ($TorchIndex) { $TorchIndex } elseif ($Cuda) { "https://download.pytorch.org/whl/cu130" } `
         else { "https://download.pytorch.org/whl/cpu" }
& $py -m pip install -q --index-url $index $torch
& $py -m pip install -q -r requirements.txt
& $py -m pip install -q --no-deps -r requirements-nodeps.txt
& $py -m pip install -q --no-deps -e .
& $py -m pip install -q -r requirements-build.txt
# The CUDA build: CUDA 12 cuBLAS for Whisper's CTranslate2 too (torch brings CUDA 13's; jarvis.spec wants it).
if ($Cuda) { & $py -m pip install -q -r requirements-cuda.txt }
if ($Cuda) { & $py -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch is not a CUDA build')" }

$env:JARVIS_BUILD_VARIANT = $variant
& "$venv\Scripts\pyinstaller.exe" --noconfirm --log-level WARN --distpath dist installer\jarvis.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
$env:JARVIS_HOME = Join-Path $env:TEMP "jarvis-selftest"
& dist\jarvis\jarvis-cli.exe --self-test
if ($LASTEXITCODE -ne 0) { throw "the frozen self-test failed" }
Remove-Item Env:JARVIS_HOME

$version = (& dist\jarvis\jarvis-cli.exe --version).Split(" ")[1]
$iscc = (Get-Command iscc.exe -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $iscc "/DAppVersion=$version" "/DVariant=$variant" installer\windows\jarvis.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
