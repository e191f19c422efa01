; Inno Setup 6 script: a per-user Windows installer for the one-folder build dist\jarvis\.
; Built by installer\windows\build.ps1 (which passes /DAppVersion and /DVariant); by hand:
;   iscc /DAppVersion=0.1.0 /DVariant=cpu installer\windows\jarvis.iss   -> dist\jarvis-0.1.0-windows-cpu-setup.exe
; No administrator rights: it installs into %LOCALAPPDATA%\Programs\Jarvis. Uninstalling keeps the user's
; settings, enrolled voices and logs (%LOCALAPPDATA%\jarvis); API keys stay in Windows Credential Manager.
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Variant
  #define Variant "cpu"
#endif
#define Root "..\.."

[Setup]
AppId={{6C1E7B2E-4F0A-4C7B-9C55-3A2E9D1F7A10}
AppName=Jarvis
AppVersion={#AppVersion}
AppPublisher=Jarvis developers
DefaultDirName={localappdata}\Programs\Jarvis
DefaultGroupName=Jarvis
PrivilegesRequired=lowest
DisableProgramGroupPage=yes
LicenseFile={#Root}\LICENSE
SetupIconFile={#Root}\resources\icons\jarvis.ico
UninstallDisplayIcon={app}\jarvis.exe
OutputDir={#Root}\dist
OutputBaseFilename=jarvis-{#AppVersion}-windows-{#Variant}-setup
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
Compression=lzma2/max
SolidCompression=yes
; The CUDA build is several GB: no disk spanning, but 64-bit offsets.
DiskSpanning=no
CloseApplications=yes

[Tasks]
Name: "autostart"; Description: "Start Jarvis when I sign in"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked

[Files]
; jarvis.exe is the windowed tray app, jarvis-cli.exe its console twin (jarvis-cli --self-test, ask, doctor...).
Source: "{#Root}\dist\jarvis\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Jarvis"; Filename: "{app}\jarvis.exe"
Name: "{group}\Jarvis self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\jarvis-cli.exe"" --self-test"
Name: "{group}\Licences"; Filename: "{app}\licenses\THIRD-PARTY.md"
Name: "{autodesktop}\Jarvis"; Filename: "{app}\jarvis.exe"; Tasks: desktopicon
Name: "{userstartup}\Jarvis"; Filename: "{app}\jarvis.exe"; Tasks: autostart

[Run]
Filename: "{app}\jarvis.exe"; Description: "Start Jarvis now"; Flags: nowait postinstall skipifsilent
