/** Messages of one feature, kept apart so features land without touching each other's text. */
const en = {
  sessions: {
    title: 'Signed-in devices',
    lead: 'Browsers and devices signed in to your account. Sign out any you do not recognise, or no longer use. Programs and WebDAV clients sign in with app passwords, listed on their own page.',
    device: 'Device',
    address: 'Address',
    signedIn: 'Signed in',
    lastSeen: 'Last active',
    current: 'This device',
    signOut: 'Sign out',
    signOutConfirm: 'Sign out {device}? It will have to sign in again.',
    signedOut: '{device} is signed out',
    signOutOthers: 'Sign out all other devices',
    signOutOthersConfirm: 'Sign out every device but this one?',
    signedOutOthers: 'No other devices signed in | 1 other device signed out | {n} other devices signed out',
    unknownDevice: 'Unknown device',
    unknownAddress: 'unknown',
    /** "{browser} on {os}" */
    browserOn: '{browser} on {os}',
  },
  appPasswordScope: {
    label: 'Access',
    files: 'Files only',
    admin: 'Files and administration',
    filesHint: 'Files and shares, never administration',
    adminHint: 'Also administers the server: keep it for your own admin scripts',
  },
  totpSetup: {
    passwordLabel: 'Your password',
    passwordLead: 'Enter your password to set up two-factor sign-in.',
  },
  twoFactorReset: {
    button: 'Reset two-factor',
    confirm:
      'Remove two-factor sign-in for {name}? Their password alone will sign them in until they set it up again.',
    done: 'Two-factor sign-in removed for {name}',
  },
};

const zhCN: typeof en = {
  sessions: {
    title: '已登录的设备',
    lead: '登录了你账户的浏览器和设备。不认识或不再使用的，请将其退出登录。程序和 WebDAV 客户端使用应用密码登录，另有单独页面。',
    device: '设备',
    address: '地址',
    signedIn: '登录时间',
    lastSeen: '最近活动',
    current: '本设备',
    signOut: '退出登录',
    signOutConfirm: '让 {device} 退出登录？它需要重新登录。',
    signedOut: '{device} 已退出登录',
    signOutOthers: '退出其他所有设备',
    signOutOthersConfirm: '让除本设备外的所有设备退出登录？',
    signedOutOthers: '没有其他已登录的设备 | 已让 1 台其他设备退出登录 | 已让 {n} 台其他设备退出登录',
    unknownDevice: '未知设备',
    unknownAddress: '未知',
    browserOn: '{os} 上的 {browser}',
  },
  appPasswordScope: {
    label: '权限',
    files: '仅文件',
    admin: '文件和管理',
    filesHint: '文件和共享，不能管理服务器',
    adminHint: '还能管理服务器：仅用于你自己的管理脚本',
  },
  totpSetup: {
    passwordLabel: '你的密码',
    passwordLead: '输入密码以设置两步验证。',
  },
  twoFactorReset: {
    button: '重置两步验证',
    confirm: '移除 {name} 的两步验证？在其重新设置之前，仅凭密码即可登录。',
    done: '已移除 {name} 的两步验证',
  },
};

export default { en, 'zh-CN': zhCN };
