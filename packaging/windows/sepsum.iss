; Inno Setup script for SepSum on Windows (build on Windows with Inno Setup 6).
; Input: the one-folder PyInstaller bundle built on Windows by `python packaging\build.py`
; (dist\sepsum\ with sepsum.exe and the bundled default model).
; Build: iscc packaging\windows\sepsum.iss  ->  dist\SepSum-Setup-<version>.exe

#define AppName "SepSum"
#define AppVersion GetEnv("SEPSUM_VERSION")
#if AppVersion == ""
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6C1E3B1A-6E2F-4B1C-9A53-5E95C1D0A7B4}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=SepSum
DefaultDirName={localappdata}\Programs\SepSum
DefaultGroupName=SepSum
PrivilegesRequired=lowest
OutputDir=..\..\dist
OutputBaseFilename=SepSum-Setup-{#AppVersion}
Compression=lzma2/ultra64
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=..\..\resources\sepsum.ico
UninstallDisplayIcon={app}\sepsum.exe
WizardStyle=modern

[Files]
Source: "..\..\dist\sepsum\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\SepSum"; Filename: "{app}\sepsum.exe"; Parameters: "gui"
Name: "{userdesktop}\SepSum"; Filename: "{app}\sepsum.exe"; Parameters: "gui"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Registry]
; "Summarize with SepSum" on PDFs and text files in Explorer's context menu.
Root: HKCU; Subkey: "Software\Classes\SystemFileAssociations\.pdf\shell\SepSum"; ValueType: string; ValueData: "Summarize with SepSum"; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\SystemFileAssociations\.pdf\shell\SepSum\command"; ValueType: string; ValueData: """{app}\sepsum.exe"" gui ""%1"""

[Run]
Filename: "{app}\sepsum.exe"; Parameters: "gui"; Description: "Start SepSum"; Flags: nowait postinstall skipifsilent
