// French (the operator's) and English; chosen from the browser, switchable, remembered.
const STRINGS = {
  fr: {
    overview: "Vue d'ensemble", gallery: 'Galerie', sms: 'SMS', stats: 'Statistiques',
    backgrounds: 'Arrière-plans', settings: 'Réglages', docs: "Référence de l'API",
    adminKey: "Clé d'administration", signIn: 'Se connecter', signOut: 'Se déconnecter',
    signInTitle: 'Console du kiosque', signInHelp: "Saisissez la clé d'administration du kiosque (ADMIN_API_KEY).",
    badKey: 'Clé refusée.', idleOut: 'Déconnecté après une période d’inactivité.', language: 'Langue',
    status: 'État', disk: 'Disque', backlog: 'File d’attente', oldest: 'Plus ancien en attente',
    remoteDb: 'Base distante', remoteStorage: 'Stockage distant', smsCredits: 'Crédits SMS', clock: 'Horloge',
    workers: 'Tâches', captures: 'Photos', syncNow: 'Synchroniser maintenant', cleanNow: 'Nettoyer maintenant',
    diag: 'Télécharger le diagnostic', done: 'Fait.', free: 'libre', none: 'aucun', notConfigured: 'non configuré',
    ok: 'ok', degraded: 'dégradé', down: 'hors service', updated: 'Mis à jour',
    from: 'Du', to: 'Au', synced: 'Synchronisées', withSms: 'Avec SMS', any: 'Toutes', yes: 'Oui', no: 'Non',
    apply: 'Filtrer', more: 'Charger plus', noCaptures: 'Aucune photo.', capture: 'Photo', del: 'Supprimer',
    confirmDelete: 'Elle est effacée du kiosque maintenant, et des copies distantes dès qu’elles sont joignables.', deleted: 'Supprimée.', close: 'Fermer',
    created: 'Créée', size: 'Taille', dims: 'Dimensions', background: 'Arrière-plan', syncState: 'Synchronisation',
    notSynced: 'non synchronisée', smsHistory: 'Historique SMS', download: 'Télécharger', details: 'Détails',
    phone: 'Numéro', attempts: 'Tentatives', lastError: 'Dernière erreur', retry: 'Réessayer', noSms: 'Aucun SMS.',
    smsUnavailable: "La liste des SMS n'est pas disponible sur ce kiosque.",
    perHour: 'Par heure (48 dernières heures)', perDay: 'Par jour (30 derniers jours)', exportExcel: 'Exporter en Excel',
    smsSent: 'SMS envoyés', total: 'Total', today: "Aujourd'hui",
    upload: 'Ajouter un arrière-plan', file: 'Fichier (JPEG ou PNG)', name: 'Nom', dropHere: 'ou déposez un fichier ici',
    rename: 'Renommer', up: 'Monter', down2: 'Descendre', noBackgrounds: 'Aucun arrière-plan.', uploaded: 'Ajouté.',
    save: 'Enregistrer', saved: 'Enregistré.', readOnly: 'Informations (lecture seule)',
    erase: 'Effacement RGPD', erasePhone: 'Numéro de téléphone', eraseButton: 'Effacer', receipt: 'Reçu',
    confirmErase: 'Effacer toutes les photos envoyées à ce numéro ?',
    operations: 'opérations', parameters: 'Paramètres', requestBody: 'Corps de la requête', responses: 'Réponses',
    required: 'obligatoire', schemas: 'Schémas', loading: 'Chargement…', error: 'Erreur',
    photo: 'Photo', taken: 'Prise', notYet: 'pas encore', nextAttempt: 'Prochain essai', fileMissing: 'fichier manquant',
    deleteTitle: 'Supprimer cette photo ?', deleteForGood: 'Supprimer définitivement', cancel: 'Annuler', actions: 'Actions',
    retryTitle: 'Renvoyer le SMS au', guestPhone: 'Numéro de téléphone de l’invité',
    retryHelp: 'Le kiosque oublie le numéro après un échec : saisissez à nouveau celui que l’invité a donné.',
    requeued: 'Remis dans la file d’envoi.',
    st_waiting_for_sync: 'attend la synchronisation', st_queued: 'en file', st_sending: 'en cours d’envoi', st_sent: 'envoyé',
    st_failed: 'échec', st_expired: 'expiré', st_cancelled: 'annulé',
    events: 'Événements', event: 'Événement', allCaptures: 'Toutes les photos', openMark: 'en cours', openNow: 'en cours',
    newEvent: 'Ouvrir un événement', eventName: "Nom de l'événement", openEvent: "Ouvrir l'événement",
    eventHelp: "Les photos prises pendant qu'un événement est ouvert lui appartiennent. Un seul à la fois : clore l'ancien avant d'ouvrir le suivant.",
    endEvent: 'Clore maintenant', reopen: 'Rouvrir', start: 'Début', end: 'Fin', noEvents: 'Aucun événement.',
    eventOpened: 'Événement ouvert :', eventClosed: 'Événement clos.', eventReopened: 'Événement rouvert.', renamed: 'Renommé.',
    noEvent: 'aucun',
  },
  en: {
    overview: 'Overview', gallery: 'Gallery', sms: 'Text messages', stats: 'Statistics',
    backgrounds: 'Backgrounds', settings: 'Settings', docs: 'API reference',
    adminKey: 'Admin key', signIn: 'Sign in', signOut: 'Sign out',
    signInTitle: 'Kiosk console', signInHelp: "Type the kiosk's admin key (ADMIN_API_KEY).",
    badKey: 'Key refused.', idleOut: 'Signed out after a period of inactivity.', language: 'Language',
    status: 'Status', disk: 'Disk', backlog: 'Backlog', oldest: 'Oldest pending',
    remoteDb: 'Remote database', remoteStorage: 'Remote storage', smsCredits: 'SMS credits', clock: 'Clock',
    workers: 'Workers', captures: 'Captures', syncNow: 'Sync now', cleanNow: 'Clean up now',
    diag: 'Download diagnostics', done: 'Done.', free: 'free', none: 'none', notConfigured: 'not configured',
    ok: 'ok', degraded: 'degraded', down: 'down', updated: 'Updated',
    from: 'From', to: 'To', synced: 'Synced', withSms: 'With SMS', any: 'Any', yes: 'Yes', no: 'No',
    apply: 'Filter', more: 'Load more', noCaptures: 'No captures.', capture: 'Capture', del: 'Delete',
    confirmDelete: 'It is removed from the kiosk now, and from the remote copies as soon as they answer.', deleted: 'Deleted.', close: 'Close',
    created: 'Created', size: 'Size', dims: 'Dimensions', background: 'Background', syncState: 'Sync',
    notSynced: 'not synced', smsHistory: 'SMS history', download: 'Download', details: 'Details',
    phone: 'Number', attempts: 'Attempts', lastError: 'Last error', retry: 'Retry', noSms: 'No text messages.',
    smsUnavailable: 'The text message list is not available on this kiosk.',
    perHour: 'Per hour (last 48 hours)', perDay: 'Per day (last 30 days)', exportExcel: 'Export to Excel',
    smsSent: 'SMS sent', total: 'Total', today: 'Today',
    upload: 'Add a background', file: 'File (JPEG or PNG)', name: 'Name', dropHere: 'or drop a file here',
    rename: 'Rename', up: 'Move up', down2: 'Move down', noBackgrounds: 'No backgrounds.', uploaded: 'Added.',
    save: 'Save', saved: 'Saved.', readOnly: 'Facts (read-only)',
    erase: 'GDPR erasure', erasePhone: 'Phone number', eraseButton: 'Erase', receipt: 'Receipt',
    confirmErase: 'Erase every capture sent to this number?',
    operations: 'operations', parameters: 'Parameters', requestBody: 'Request body', responses: 'Responses',
    required: 'required', schemas: 'Schemas', loading: 'Loading…', error: 'Error',
    photo: 'Photo', taken: 'Taken', notYet: 'not yet', nextAttempt: 'Next attempt', fileMissing: 'file missing',
    deleteTitle: 'Delete this capture?', deleteForGood: 'Delete for good', cancel: 'Cancel', actions: 'Actions',
    retryTitle: 'Retry the SMS to', guestPhone: "Guest's phone number",
    retryHelp: 'The kiosk forgets the number once an SMS fails: type the number the guest gave again.',
    requeued: 'Back in the queue.',
    st_waiting_for_sync: 'waiting for sync', st_queued: 'queued', st_sending: 'sending', st_sent: 'sent',
    st_failed: 'failed', st_expired: 'expired', st_cancelled: 'cancelled',
    events: 'Events', event: 'Event', allCaptures: 'All captures', openMark: 'open', openNow: 'open now',
    newEvent: 'Open an event', eventName: 'Event name', openEvent: 'Open the event',
    eventHelp: 'Captures taken while an event is open belong to it. One at a time: close the last one before opening the next.',
    endEvent: 'Close now', reopen: 'Reopen', start: 'Start', end: 'End', noEvents: 'No events yet.',
    eventOpened: 'Event opened:', eventClosed: 'Event closed.', eventReopened: 'Event reopened.', renamed: 'Renamed.',
    noEvent: 'none',
  },
};

const LANG_KEY = 'kiosk-console-lang';

function pick() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && STRINGS[saved]) return saved;
  for (const l of navigator.languages || [navigator.language || 'fr']) {
    const base = String(l).slice(0, 2).toLowerCase();
    if (STRINGS[base]) return base;
  }
  return 'fr';
}

export let lang = pick();
export function setLang(l) { lang = l; localStorage.setItem(LANG_KEY, l); }
export function t(key) { return STRINGS[lang][key] ?? STRINGS.en[key] ?? key; }
export function fmtDate(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(lang === 'fr' ? 'fr-FR' : 'en-GB');
}
export function fmtDay(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '–') : d.toLocaleDateString(lang === 'fr' ? 'fr-FR' : 'en-GB');
}
